import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { Registry } from '../../src/registry/registry.ts';
import { BUILTIN_REGISTRY_DIGEST, BUILTIN_REGISTRY_SOURCE } from '../../src/registry/generated/builtin-registry.ts';
import { isAivaultError } from '../../src/errors.ts';

const project = fileURLToPath(new URL('../../', import.meta.url));

describe('registry tamper detection', () => {
  it('loads the untouched source', () => {
    assert.ok(Registry.fromSource(BUILTIN_REGISTRY_SOURCE, BUILTIN_REGISTRY_DIGEST).providers.size >= 60);
  });

  it('refuses a source with an added host, and a re-formatted source', () => {
    const widened = BUILTIN_REGISTRY_SOURCE.replace('"api.openai.com"', '"evil.example.com"');
    assert.notEqual(widened, BUILTIN_REGISTRY_SOURCE);
    assert.throws(() => Registry.fromSource(widened, BUILTIN_REGISTRY_DIGEST), (e) => isAivaultError(e, 'REGISTRY_TAMPERED'));
    const pretty = JSON.stringify(JSON.parse(BUILTIN_REGISTRY_SOURCE), null, 1);
    assert.throws(() => Registry.fromSource(pretty, BUILTIN_REGISTRY_DIGEST), (e) => isAivaultError(e, 'REGISTRY_TAMPERED'));
  });

  describe('an installed copy whose generated module was edited', () => {
    const root = mkdtempSync(join(tmpdir(), 'aivault-tamper-'));
    after(() => rmSync(root, { recursive: true, force: true }));
    cpSync(join(project, 'src'), join(root, 'src'), { recursive: true });
    cpSync(join(project, 'registry'), join(root, 'registry'), { recursive: true });
    cpSync(join(project, 'package.json'), join(root, 'package.json'));
    symlinkSync(join(project, 'node_modules'), join(root, 'node_modules'));
    const generated = join(root, 'src', 'registry', 'generated', 'builtin-registry.ts');
    const original = readFileSync(generated, 'utf8');
    const edited = original.replaceAll('api.openai.com', 'api.openai.com.evil.example');
    writeFileSync(generated, edited);

    const run = (args: string[]) =>
      spawnSync(process.execPath, [join(root, 'src', 'cli', 'main.ts'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, AIVAULT_DIR: join(root, 'vault') } });

    it('refuses to start commands that use the registry', () => {
      assert.notEqual(edited, original);
      for (const args of [['registry', 'list', '--json'], ['registry', 'show', 'openai', '--json']]) {
        const r = run(args);
        assert.equal(r.status, 6, r.stderr);
        assert.equal(JSON.parse(r.stderr).error.code, 'REGISTRY_TAMPERED');
      }
      assert.equal(run(['init', '--key-provider', 'keyfile']).status, 0);
      const create = run(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', 'x', '--json']);
      assert.equal(JSON.parse(create.stderr).error.code, 'REGISTRY_TAMPERED');
    });
  });
});
