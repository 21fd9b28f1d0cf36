import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lazyImport } from '../src/lazy.ts';

describe('lazyImport', () => {
  it('imports once for every caller, not before the first call, and tries again after a failure', async () => {
    let calls = 0;
    let fail = true;
    const load = lazyImport(async () => {
      calls += 1;
      if (fail) throw new Error('not installed');
      return { loaded: calls };
    });
    assert.equal(calls, 0, 'nothing imported before the first call');
    const [a, b] = [load(), load()];
    assert.equal(a, b, 'callers at once share one import');
    await assert.rejects(a, /not installed/);
    fail = false;
    assert.deepEqual(await load(), { loaded: 2 }, 'a failed import is tried again');
    assert.equal(await load(), await load());
    assert.equal(calls, 2);
  });
});
