import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Vault } from '../../src/vault/vault.ts';
import { assertNoLeak, canary, readAllFiles, recorder, runCli, tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';

function json<T>(r: CliResult): T {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

function errorOf(r: CliResult): { code: string; message: string } {
  return (JSON.parse(r.stderr) as { error: { code: string; message: string } }).error;
}

describe('aivault secrets (CLI)', () => {
  let v: TempVault;
  const secretValue = canary();
  const rotatedValue = canary('ROTATED');
  const { run, outputs } = recorder(() => v);

  before(async () => {
    v = await tempVault();
  });
  after(() => v.cleanup());

  it('creates a secret and prints its vault:secret reference', async () => {
    const r = await run(['secrets', 'create', '--name', 'CANARY_KEY', '--value', secretValue, '--description', 'test key']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^vault:secret:[0-9a-f-]{36}$/);
  });

  it('reads values from stdin and from a file', async () => {
    const fromStdin = await run(['secrets', 'create', '--name', 'STDIN_KEY', '--value-stdin'], { input: `${canary()}\n` });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    const file = join(v.dir, '..', 'value.txt');
    writeFileSync(file, canary());
    const fromFile = await run(['secrets', 'create', '--name', 'FILE_KEY', '--value-file', file, '--json']);
    assert.equal(json<{ name: string }>(fromFile).name, 'FILE_KEY');
    const both = await run(['secrets', 'create', '--name', 'TWO_WAYS', '--value', 'x-value-1', '--value-stdin', '--json'], { input: 'y-value-1' });
    assert.equal(both.code, 2);
    assert.equal(errorOf(both).code, 'INVALID_ARGUMENT');
  });

  it('lists and describes metadata only', async () => {
    const list = json<Array<{ name: string; fingerprint: string; currentVersion: number }>>(await run(['secrets', 'list', '--json']));
    assert.deepEqual(list.map((s) => s.name), ['CANARY_KEY', 'FILE_KEY', 'STDIN_KEY']);
    const described = json<Record<string, unknown>>(await run(['secrets', 'describe', 'CANARY_KEY', '--json']));
    assert.deepEqual(Object.keys(described).sort(), ['aliases', 'allowShort', 'createdAt', 'currentVersion', 'description', 'fingerprint', 'groups', 'id', 'name', 'pinnedProvider', 'ref', 'scope', 'updatedAt', 'versions']);
    const plain = await run(['secrets', 'describe', 'CANARY_KEY']);
    assert.match(plain.stdout, /fingerprint: [0-9a-f]{16}/);
  });

  it('rotates, keeps the previous version, and rolls back', async () => {
    const rotated = json<{ currentVersion: number; versions: unknown[] }>(await run(['secrets', 'rotate', 'CANARY_KEY', '--value-stdin', '--json'], { input: rotatedValue }));
    assert.equal(rotated.currentVersion, 2);
    assert.equal(rotated.versions.length, 2);
    const back = json<{ currentVersion: number }>(await run(['secrets', 'rollback', 'CANARY_KEY', '--json']));
    assert.equal(back.currentVersion, 1);
    const verify = await run(['secrets', 'verify']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /ok +CANARY_KEY/);
  });

  it('gives stable codes and exit codes for bad input', async () => {
    const cases: Array<[string[], string, number]> = [
      [['secrets', 'create', '--name', 'lower-case', '--value', 'x-value-1', '--json'], 'INVALID_NAME', 2],
      [['secrets', 'create', '--name', 'CANARY_KEY', '--value', 'x-value-1', '--json'], 'SECRET_ALREADY_EXISTS', 4],
      [['secrets', 'describe', 'MISSING_KEY', '--json'], 'SECRET_NOT_FOUND', 3],
      [['secrets', 'create', '--name', 'SCOPED', '--value', 'x-value-1', '--scope', 'planet:x', '--json'], 'INVALID_SCOPE', 2],
      [['secrets', 'delete', 'CANARY_KEY', '--json'], 'CONFIRMATION_REQUIRED', 2],
      [['secrets', 'frobnicate', '--json'], 'INVALID_ARGUMENT', 2],
      [['init', '--key-provider', 'keyfile', '--json'], 'VAULT_ALREADY_INITIALIZED', 4],
    ];
    for (const [args, code, exit] of cases) {
      const r = await run(args);
      assert.equal(r.code, exit, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(errorOf(r).code, code, args.join(' '));
      assert.equal(r.stdout, '');
    }
    const plain = await run(['secrets', 'describe', 'MISSING_KEY']);
    assert.match(plain.stderr, /^error SECRET_NOT_FOUND: /);
  });

  it('does not echo a mistyped option that carries a value', async () => {
    const leaked = canary('TYPO');
    const r = await run(['secrets', 'create', '--name', 'TYPO_KEY', `--vaule=${leaked}`]);
    assert.equal(r.code, 2);
    assertNoLeak(r.stderr + r.stdout, leaked, 'usage error');
  });

  it('deletes with --yes', async () => {
    const r = await run(['secrets', 'delete', 'STDIN_KEY', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await run(['secrets', 'describe', 'STDIN_KEY'])).code, 3);
  });

  it('never shows a value in any output, and never stores one in the clear', () => {
    for (const out of outputs) {
      assertNoLeak(out, secretValue, 'CLI output');
      assertNoLeak(out, rotatedValue, 'CLI output');
    }
    for (const [path, bytes] of readAllFiles(v.dir)) {
      assertNoLeak(bytes, secretValue, path);
      assertNoLeak(bytes, rotatedValue, path);
    }
  });
});

describe('a damaged or wrongly-keyed vault', () => {
  function digest(path: string): string {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  }

  it('refuses a wrong key file and writes nothing', async () => {
    const v = await tempVault();
    try {
      await v.cli(['secrets', 'create', '--name', 'KEPT', '--value', canary()]);
      const db = join(v.dir, 'vault.db');
      const before = digest(db);
      const wrongKey = join(v.dir, '..', 'wrong.key');
      writeFileSync(wrongKey, Buffer.alloc(32, 7).toString('base64'), { mode: 0o600 });
      const r = await v.cli(['secrets', 'create', '--name', 'NEW_ONE', '--value', 'x-value-1', '--json'], { env: { AIVAULT_KEY_FILE: wrongKey } });
      assert.equal(r.code, 5);
      assert.equal(errorOf(r).code, 'VAULT_KEY_MISMATCH');
      assert.equal(digest(db), before);
      const list = json<Array<{ name: string }>>(await v.cli(['secrets', 'list', '--json']));
      assert.deepEqual(list.map((s) => s.name), ['KEPT']);
    } finally {
      v.cleanup();
    }
  });

  it('refuses a key file others can read', async () => {
    const v = await tempVault();
    try {
      chmodSync(join(v.dir, 'master.key'), 0o644);
      const r = await v.cli(['secrets', 'list', '--json']);
      assert.equal(errorOf(r).code, 'KEYFILE_INSECURE');
      assert.equal(r.code, 5);
    } finally {
      v.cleanup();
    }
  });

  it('refuses a key file another user owns (they know the key), a symbolic link, and adopts neither at init', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root, to give a file to another user');
    const v = await tempVault();
    try {
      const planted = join(v.dir, '..', 'planted.key');
      writeFileSync(planted, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      chownSync(planted, 65534, 65534); // nobody
      const adopt = await runCli(['init', '--key-provider', 'keyfile', '--key-file', planted, '--json'], { env: { AIVAULT_DIR: join(v.dir, '..', 'other') } });
      assert.equal(errorOf(adopt).code, 'KEYFILE_INSECURE');
      assert.match(errorOf(adopt).message, /uid 65534/);
      const use = await v.cli(['secrets', 'list', '--json'], { env: { AIVAULT_KEY_FILE: planted } });
      assert.equal(errorOf(use).code, 'KEYFILE_INSECURE');
      const link = join(v.dir, '..', 'link.key');
      symlinkSync(join(v.dir, 'master.key'), link);
      const viaLink = await v.cli(['secrets', 'list', '--json'], { env: { AIVAULT_KEY_FILE: link } });
      assert.equal(errorOf(viaLink).code, 'KEYFILE_INSECURE');
      assert.equal((await v.cli(['secrets', 'list', '--json'])).code, 0, 'the real key file, owned by this user, still opens the vault');
    } finally {
      v.cleanup();
    }
  });

  it('refuses a vault directory others can reach, at init and at every open', async () => {
    const v = await tempVault();
    try {
      for (const mode of [0o770, 0o705]) {
        chmodSync(v.dir, mode);
        const r = await v.cli(['secrets', 'list', '--json']);
        assert.equal(errorOf(r).code, 'VAULT_DIR_INSECURE', mode.toString(8));
        assert.equal(r.code, 5);
      }
      const open = join(v.dir, '..', 'open-dir');
      mkdirSync(open, { mode: 0o777 });
      chmodSync(open, 0o777);
      const init = await runCli(['init', '--key-provider', 'keyfile', '--json'], { env: { AIVAULT_DIR: open } });
      assert.equal(errorOf(init).code, 'VAULT_DIR_INSECURE');
      assert.deepEqual(readdirSync(open), [], 'nothing was created in it');
      chmodSync(v.dir, 0o700);
      assert.equal((await v.cli(['secrets', 'list', '--json'])).code, 0);
    } finally {
      v.cleanup();
    }
  });

  it('refuses a vault directory another user owns (they can swap the key or the database), at init and at open', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root, to give a directory to another user');
    const v = await tempVault();
    try {
      chownSync(v.dir, 65534, 65534); // nobody
      const use = await v.cli(['secrets', 'list', '--json']);
      assert.equal(errorOf(use).code, 'VAULT_DIR_INSECURE');
      assert.match(errorOf(use).message, /uid 65534/);
      const theirs = join(v.dir, '..', 'theirs');
      mkdirSync(theirs, { mode: 0o700 });
      chownSync(theirs, 65534, 65534);
      const init = await runCli(['init', '--key-provider', 'keyfile', '--json'], { env: { AIVAULT_DIR: theirs } });
      assert.equal(errorOf(init).code, 'VAULT_DIR_INSECURE');
      assert.deepEqual(readdirSync(theirs), [], 'no key file or database was left in it');
      chownSync(v.dir, 0, 0);
      assert.equal((await v.cli(['secrets', 'list', '--json'])).code, 0, 'back with its owner, the vault opens');
    } finally {
      v.cleanup();
    }
  });

  it('refuses a wrong AIVAULT_MASTER_KEY and a wrong AIVAULT_PASSPHRASE', async () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    const envVault = await tempVault(['--key-provider', 'env'], { AIVAULT_MASTER_KEY: key });
    const passVault = await tempVault(['--key-provider', 'passphrase'], { AIVAULT_PASSPHRASE: 'a long enough passphrase' });
    try {
      const wrongEnv = await envVault.cli(['secrets', 'list', '--json'], { env: { AIVAULT_MASTER_KEY: Buffer.alloc(32, 2).toString('base64') } });
      assert.equal(errorOf(wrongEnv).code, 'VAULT_KEY_MISMATCH');
      const missingEnv = await envVault.cli(['secrets', 'list', '--json'], { env: { AIVAULT_MASTER_KEY: '' } });
      assert.equal(errorOf(missingEnv).code, 'VAULT_LOCKED');
      const wrongPass = await passVault.cli(['secrets', 'list', '--json'], { env: { AIVAULT_PASSPHRASE: 'not the passphrase at all' } });
      assert.equal(errorOf(wrongPass).code, 'VAULT_KEY_MISMATCH');
      const ok = await passVault.cli(['secrets', 'list', '--json']);
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      envVault.cleanup();
      passVault.cleanup();
    }
  });

  it('reports a truncated database as VAULT_CORRUPTED and leaves the file as it was', async () => {
    const v = await tempVault();
    try {
      // Filled in process (forty CLI runs would only cost time): the CLI reads what is left.
      const filling = await Vault.open({ dir: v.dir, env: v.env });
      for (let i = 0; i < 40; i++) await filling.createSecret({ name: `FILL_${i}`, value: Buffer.from('x'.repeat(2000)) });
      await filling.close();
      const db = join(v.dir, 'vault.db');
      truncateSync(db, Math.floor(statSync(db).size / 2));
      const before = digest(db);
      const list = await v.cli(['secrets', 'list', '--json']);
      assert.equal(list.code, 6, list.stderr);
      assert.equal(errorOf(list).code, 'VAULT_CORRUPTED');
      const create = await v.cli(['secrets', 'create', '--name', 'AFTER', '--value', 'x-value-1', '--json']);
      assert.equal(errorOf(create).code, 'VAULT_CORRUPTED');
      assert.equal(digest(db), before);
    } finally {
      v.cleanup();
    }
  });

  it('reports garbage in place of the database as VAULT_CORRUPTED', async () => {
    const v = await tempVault();
    try {
      const db = join(v.dir, 'vault.db');
      writeFileSync(db, Buffer.alloc(8192, 0x41));
      const r = await v.cli(['secrets', 'list', '--json']);
      assert.equal(errorOf(r).code, 'VAULT_CORRUPTED');
      assert.deepEqual(readFileSync(db), Buffer.alloc(8192, 0x41));
    } finally {
      v.cleanup();
    }
  });

  it('says there is no vault before init', async () => {
    const r = await runCli(['secrets', 'list', '--json'], { env: { AIVAULT_DIR: '/nonexistent/aivault-test' } });
    assert.equal(r.code, 3);
    assert.equal(errorOf(r).code, 'VAULT_NOT_INITIALIZED');
  });
});
