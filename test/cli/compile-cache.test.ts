// The compile cache holds code the CLI runs: only a directory of this user's, private to it, is used.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { privateCompileCache } from '../../src/cli/compile-cache.ts';

describe('compile cache directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'aivault-cc-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const dirOf = (home: string) => join(home, 'aivault', 'compile-cache');

  it('is made private when missing, and used', () => {
    const home = join(root, 'fresh');
    assert.equal(privateCompileCache({ XDG_CACHE_HOME: home }), dirOf(home));
    assert.equal(statSync(dirOf(home)).mode & 0o777, 0o700);
  });

  it('is not used when others can write it, or it is another user\'s', () => {
    const open = join(root, 'open');
    mkdirSync(dirOf(open), { recursive: true });
    chmodSync(dirOf(open), 0o777);
    assert.equal(privateCompileCache({ XDG_CACHE_HOME: open }), undefined);
    if (process.getuid?.() === 0) {
      const planted = join(root, 'planted');
      mkdirSync(dirOf(planted), { recursive: true, mode: 0o700 });
      chownSync(dirOf(planted), 65534, 65534);
      assert.equal(privateCompileCache({ XDG_CACHE_HOME: planted }), undefined);
    }
    assert.equal(privateCompileCache({ XDG_CACHE_HOME: join(root, 'off'), NODE_DISABLE_COMPILE_CACHE: '1' }), undefined);
  });
});
