// `aivault init --storage postgres://…` and opening such a vault: the URL's password is
// never written or printed, a schema holds one vault, and errors are the stable codes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { assertNoLeak, canary, readAllFiles, runCli } from '../helpers/cli.ts';
import { PG_BASE_URL, dropSchema, freshSchema } from '../helpers/postgres.ts';

describe('aivault on PostgreSQL (CLI)', () => {
  const root = mkdtempSync(join(tmpdir(), 'aivault-pg-cli-'));
  const schema = freshSchema('cli');
  const password = canary('PGPASSWORD');
  const key = randomBytes(32).toString('base64');
  // Trust auth on the test server accepts any password, so the URL can carry a canary.
  const url = new URL(PG_BASE_URL);
  url.password = password;
  url.searchParams.set('schema', schema);
  const env = (dir: string, extra: Record<string, string> = {}) => ({ AIVAULT_DIR: dir, AIVAULT_MASTER_KEY: key, ...extra });
  after(async () => {
    rmSync(root, { recursive: true, force: true });
    await dropSchema(schema);
  });

  it('init records the server without its password; the vault works from another directory with AIVAULT_DATABASE_URL', async () => {
    const dir = join(root, 'a');
    const init = await runCli(['init', '--key-provider', 'env', '--storage', url.href, '--json'], { env: env(dir) });
    assert.equal(init.code, 0, init.stderr);
    assert.equal((JSON.parse(init.stdout) as { engine: string }).engine, 'postgres');
    assert.ok(existsSync(join(dir, 'storage.json')) && !existsSync(join(dir, 'vault.db')));
    for (const [, bytes] of readAllFiles(dir)) assertNoLeak(bytes.toString('latin1'), password, 'vault directory');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'storage.json'), 'utf8')).url.includes(schema), true);

    const secret = canary('PGSECRET');
    const created = await runCli(['secrets', 'create', '--name', 'PG_KEY', '--value', secret], { env: env(dir) });
    assert.equal(created.code, 0, created.stderr);
    // A replica elsewhere: an empty directory, the URL from the environment.
    const other = join(root, 'replica');
    const listed = await runCli(['secrets', 'list', '--json'], { env: env(other, { AIVAULT_DATABASE_URL: url.href }) });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ name: string }>).map((s) => s.name), ['PG_KEY']);
    const status = await runCli(['status', '--json'], { env: env(other, { AIVAULT_DATABASE_URL: url.href }) });
    assert.equal((JSON.parse(status.stdout) as { engine: string }).engine, 'postgres');
    for (const out of [init.stdout, init.stderr, created.stdout, listed.stdout, status.stdout, status.stderr]) {
      assertNoLeak(out, password, 'CLI output');
      assertNoLeak(out, secret, 'CLI output');
    }
    // The secret is stored sealed: its bytes are nowhere in the database.
    const dump = await import('../helpers/postgres.ts').then((m) => m.adminQuery(`SELECT encode(ciphertext, 'escape') AS c FROM ${schema}.secret_versions`));
    assertNoLeak(JSON.stringify(dump.rows), secret, 'database');
  });

  it('one vault per schema; a wrong key is refused; an empty schema is not a vault', async () => {
    const again = await runCli(['init', '--key-provider', 'env', '--storage', url.href, '--json'], { env: env(join(root, 'b')) });
    assert.equal(again.code, 4);
    assert.equal((JSON.parse(again.stderr) as { error: { code: string } }).error.code, 'VAULT_ALREADY_INITIALIZED');
    const wrong = await runCli(['secrets', 'list', '--json'], { env: { AIVAULT_DIR: join(root, 'c'), AIVAULT_MASTER_KEY: randomBytes(32).toString('base64'), AIVAULT_DATABASE_URL: url.href } });
    assert.equal((JSON.parse(wrong.stderr) as { error: { code: string } }).error.code, 'VAULT_KEY_MISMATCH');
    const empty = new URL(url.href);
    empty.searchParams.set('schema', `${schema}_none`);
    const none = await runCli(['secrets', 'list', '--json'], { env: env(join(root, 'd'), { AIVAULT_DATABASE_URL: empty.href }) });
    assert.equal(none.code, 3);
    assert.equal((JSON.parse(none.stderr) as { error: { code: string } }).error.code, 'VAULT_NOT_INITIALIZED');
  });

  it('a password in the query (password, sslpassword, any case) is neither recorded nor printed', async () => {
    for (const [i, param] of ['password', 'sslpassword', 'PassWord'].entries()) {
      const inQuery = new URL(PG_BASE_URL);
      const secret = canary('PGQUERYPW');
      inQuery.searchParams.set(param, secret);
      inQuery.searchParams.set('schema', `${schema}_q${i}`);
      const dir = join(root, `q${i}`);
      const init = await runCli(['init', '--key-provider', 'env', '--storage', inQuery.href, '--json'], { env: env(dir) });
      assert.equal(init.code, 0, init.stderr);
      const status = await runCli(['status', '--json'], { env: env(dir, { AIVAULT_DATABASE_URL: inQuery.href }) });
      for (const out of [init.stdout, init.stderr, status.stdout, status.stderr]) assertNoLeak(out, secret, `output (${param})`);
      for (const [, bytes] of readAllFiles(dir)) assertNoLeak(bytes.toString('latin1'), secret, `vault directory (${param})`);
    }
  });

  it('bad URLs and an unreachable server give stable codes, never the password', async () => {
    const bad = await runCli(['init', '--key-provider', 'env', '--storage', 'mysql://x', '--json'], { env: env(join(root, 'e')) });
    assert.equal(bad.code, 2);
    const badSchema = await runCli(['init', '--key-provider', 'env', '--storage', `${PG_BASE_URL}?schema=Robert');DROP`, '--json'], { env: env(join(root, 'f')) });
    assert.equal(badSchema.code, 2);
    const down = new URL(url.href);
    down.port = '1';
    const unreachable = await runCli(['secrets', 'list', '--json'], { env: env(join(root, 'g'), { AIVAULT_DATABASE_URL: down.href }) });
    assert.equal(unreachable.code, 9);
    assert.equal((JSON.parse(unreachable.stderr) as { error: { code: string } }).error.code, 'STORAGE_UNAVAILABLE');
    for (const out of [bad.stderr, badSchema.stderr, unreachable.stderr]) assertNoLeak(out, password, 'error output');
  });
});
