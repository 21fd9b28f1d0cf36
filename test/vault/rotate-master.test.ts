// `aivault rotate-master`: a new master key, every data key rewrapped in one transaction.
// The old key stops opening the vault, nothing is lost, the audit chain and fingerprints
// still verify; a process still holding the old key cannot write; a rotation killed at any
// moment leaves a vault that opens with exactly one of the two keys.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAivaultError } from '../../src/errors.ts';
import { Vault } from '../../src/vault/vault.ts';
import { CLI, assertNoLeak, canary, readAllFiles, tempVault, CHILD_ENV } from '../helpers/cli.ts';

type Err = { error: { code: string } };
const fingerprints = async (cli: (a: string[]) => Promise<{ stdout: string }>) =>
  (JSON.parse((await cli(['secrets', 'list', '--json'])).stdout) as Array<{ name: string; fingerprint: string }>).map((s) => `${s.name}:${s.fingerprint}`).sort();

describe('aivault rotate-master', () => {
  it('key file -> new key file -> passphrase -> environment key: values, history and audit survive; old keys stop working', async () => {
    const v = await tempVault();
    try {
      const original = canary('ROTB');
      const values = { A_KEY: canary('ROTA'), B_KEY: canary('ROTB1') };
      assert.equal((await v.cli(['secrets', 'create', '--name', 'A_KEY', '--value', values.A_KEY])).code, 0);
      assert.equal((await v.cli(['secrets', 'create', '--name', 'B_KEY', '--value', original])).code, 0);
      assert.equal((await v.cli(['secrets', 'rotate', 'B_KEY', '--value', values.B_KEY])).code, 0);
      const before = await fingerprints(v.cli);
      const oldKeyFile = join(v.dir, 'master.key');

      const rotated = await v.cli(['rotate-master', '--new-key', '--json']);
      assert.equal(rotated.code, 0, rotated.stderr);
      const out = JSON.parse(rotated.stdout) as { keyProvider: { kind: string; path: string }; versions: number };
      assert.deepEqual([out.keyProvider.kind, out.versions], ['keyfile', 3]);
      assert.notEqual(out.keyProvider.path, 'master.key');
      const old = await v.cli(['secrets', 'list', '--json'], { env: { AIVAULT_KEY_FILE: oldKeyFile } });
      assert.equal((JSON.parse(old.stderr) as Err).error.code, 'VAULT_KEY_MISMATCH');

      const check = async (env: Record<string, string>) => {
        assert.equal((await v.cli(['secrets', 'verify'], { env })).code, 0, 'every kept version decrypts');
        for (const [name, value] of Object.entries(values)) assert.equal((await v.cli(['secrets', 'compare', name], { env, input: value })).stdout.trim(), 'match');
        assert.deepEqual(await fingerprints((a) => v.cli(a, { env })), before, 'fingerprints are unchanged');
        assert.equal((await v.cli(['audit', 'verify'], { env })).code, 0, 'the audit chain verifies across the rotation');
      };
      await check({});
      // The kept previous version was rewrapped too: roll back and compare.
      assert.equal((await v.cli(['secrets', 'rollback', 'B_KEY'])).code, 0);
      assert.equal((await v.cli(['secrets', 'compare', 'B_KEY'], { input: original })).stdout.trim(), 'match');
      assert.equal((await v.cli(['secrets', 'rollback', 'B_KEY'])).code, 0);

      // Again, now from a keyring: to a passphrase.
      const pass = 'correct horse battery staple 42';
      const toPass = await v.cli(['rotate-master', '--new-passphrase', '--json'], { env: { AIVAULT_NEW_PASSPHRASE: pass } });
      assert.equal(toPass.code, 0, toPass.stderr);
      await check({ AIVAULT_PASSPHRASE: pass });
      const wrongPass = await v.cli(['secrets', 'list', '--json'], { env: { AIVAULT_PASSPHRASE: 'not the passphrase at all' } });
      assert.equal((JSON.parse(wrongPass.stderr) as Err).error.code, 'VAULT_KEY_MISMATCH');

      // And to an environment key; the same key twice is refused.
      const envKey = randomBytes(32).toString('base64');
      assert.equal((await v.cli(['rotate-master', '--new-env-key'], { env: { AIVAULT_PASSPHRASE: pass, AIVAULT_NEW_MASTER_KEY: envKey } })).code, 0);
      await check({ AIVAULT_MASTER_KEY: envKey });
      const same = await v.cli(['rotate-master', '--new-env-key', '--json'], { env: { AIVAULT_MASTER_KEY: envKey, AIVAULT_NEW_MASTER_KEY: envKey } });
      assert.equal((JSON.parse(same.stderr) as Err).error.code, 'INVALID_ARGUMENT');
      await check({ AIVAULT_MASTER_KEY: envKey });

      const audit = JSON.parse((await v.cli(['audit', 'list', '--json'], { env: { AIVAULT_MASTER_KEY: envKey } })).stdout) as Array<{ action: string; reason: string | null }>;
      assert.equal(audit.filter((a) => a.action === 'vault.rotate-master').length, 4, 'every attempt is on record');
      for (const [, bytes] of readAllFiles(v.dir)) for (const value of [...Object.values(values), original, envKey]) assertNoLeak(bytes.toString('latin1'), value, 'vault files');
    } finally {
      v.cleanup();
    }
  });

  it('refuses an existing key file as the new key, changing nothing', async () => {
    const v = await tempVault();
    try {
      copyFileSync(join(v.dir, 'master.key'), join(v.dir, 'copy.key'));
      const r = await v.cli(['rotate-master', '--new-key', '--key-file', 'copy.key', '--json']);
      assert.deepEqual([r.code, (JSON.parse(r.stderr) as Err).error.code], [2, 'INVALID_ARGUMENT']);
      assert.equal((await v.cli(['secrets', 'list'])).code, 0);
    } finally {
      v.cleanup();
    }
  });

  it('a process still holding the old key cannot write, and cannot read the rewrapped secrets', async () => {
    const v = await tempVault();
    try {
      const a = await Vault.open({ dir: v.dir });
      const b = await Vault.open({ dir: v.dir });
      try {
        const s = await a.createSecret({ name: 'STALE_TEST', value: Buffer.from('stale-test-value') });
        await a.rotateMaster({ kind: 'keyfile', keyFile: 'next.key' });
        await assert.rejects(b.createSecret({ name: 'WRITTEN_STALE', value: Buffer.from('x1234-value') }), (e) => isAivaultError(e, 'VAULT_KEY_MISMATCH'));
        await assert.rejects(b.rotateSecret('STALE_TEST', Buffer.from('y1234-value')), (e) => isAivaultError(e, 'VAULT_KEY_MISMATCH'));
        await assert.rejects(b.revealSecret(s.id), (e) => isAivaultError(e, 'VAULT_DECRYPT_FAILED'));
        assert.equal((await a.revealSecret(s.id)).toString(), 'stale-test-value', 'the rotating process goes on with the new keys');
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      v.cleanup();
    }
  });

  it('killed at any moment, the vault opens with exactly one of the two keys and loses nothing', async () => {
    const v = await tempVault();
    try {
      const vault = await Vault.open({ dir: v.dir });
      for (let i = 0; i < 150; i++) await vault.createSecret({ name: `BULK_${i}`, value: Buffer.from(`bulk-value-${i}-${'x'.repeat(20)}`) });
      await vault.close();
      for (const delay of [150, 300, 450, 600]) {
        const keysBefore = new Set(readdirSync(v.dir).filter((f) => f.endsWith('.key')));
        const child = spawn(process.execPath, [CLI, 'rotate-master', '--new-key'], { env: { ...CHILD_ENV, ...v.env }, stdio: 'ignore' });
        const exited = new Promise((resolve) => child.once('exit', resolve));
        await sleep(delay);
        child.kill('SIGKILL');
        await exited;
        // Whatever key the vault now names opens it, and every secret is intact.
        const verify = await v.cli(['secrets', 'verify', '--json']);
        assert.equal(verify.code, 0, `after a kill at ${delay} ms: ${verify.stderr}`);
        const count = (JSON.parse((await v.cli(['secrets', 'list', '--json'])).stdout) as unknown[]).length;
        assert.equal(count, 150);
        // And no other key does: each old key file is refused once the vault moved on.
        const current = (JSON.parse((await v.cli(['status', '--json'])).stdout) as { keyProvider: string }).keyProvider;
        assert.equal(current, 'keyfile');
        const opened = [...new Set([...keysBefore, ...readdirSync(v.dir).filter((f) => f.endsWith('.key'))])];
        let openers = 0;
        for (const file of opened) if ((await v.cli(['secrets', 'list'], { env: { AIVAULT_KEY_FILE: join(v.dir, file) } })).code === 0) openers += 1;
        assert.equal(openers, 1, `exactly one key file opens the vault after a kill at ${delay} ms`);
      }
    } finally {
      v.cleanup();
    }
  });
});
