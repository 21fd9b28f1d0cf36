// `aivault secrets update`: rename and aliases, never the value; pinned names stay put.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertNoLeak, canary, recorder, tempVault, type TempVault } from '../helpers/cli.ts';

type Err = { error: { code: string } };
type Info = { id: string; name: string; aliases: string[]; fingerprint: string; currentVersion: number };

describe('aivault secrets update', () => {
  let v: TempVault;
  const value = canary('UPD');
  let id: string;
  const { run, outputs } = recorder(() => v);

  before(async () => {
    v = await tempVault();
    id = (JSON.parse((await run(['secrets', 'create', '--name', 'MY_TOKEN', '--value', value, '--alias', 'billing', '--json'])).stdout) as Info).id;
  });
  after(() => {
    for (const o of outputs) assertNoLeak(o, value, 'update output');
    v.cleanup();
  });

  it('renames by id, adds aliases; the value and its fingerprint stay the same; reachable by alias', async () => {
    const before = JSON.parse((await run(['secrets', 'describe', 'MY_TOKEN', '--json'])).stdout) as Info;
    const r = await run(['secrets', 'update', '--id', id, '--name', 'BILLING_TOKEN', '--alias', 'invoices', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const after = JSON.parse(r.stdout) as Info;
    assert.deepEqual([after.name, after.aliases, after.fingerprint, after.currentVersion], ['BILLING_TOKEN', ['billing', 'invoices'], before.fingerprint, before.currentVersion]);
    assert.equal((await run(['secrets', 'compare', 'invoices'], { input: value })).stdout.trim(), 'match', 'an alias resolves to the secret');
    assert.equal((JSON.parse((await run(['secrets', 'describe', 'MY_TOKEN', '--json'])).stderr) as Err).error.code, 'SECRET_NOT_FOUND');
    const cleared = JSON.parse((await run(['secrets', 'update', 'billing', '--clear-aliases', '--alias', 'ops', '--json'])).stdout) as Info;
    assert.deepEqual(cleared.aliases, ['ops']);
    const audit = JSON.parse((await run(['audit', 'list', '--json'])).stdout) as Array<{ action: string; target: string }>;
    assert.ok(audit.some((a) => a.action === 'secret.update' && a.target === 'secret:MY_TOKEN@global -> BILLING_TOKEN'));
  });

  it('refuses: renaming a pinned secret, taking a provider-owned name, a taken alias, bad aliases, nothing to do', async () => {
    await run(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', canary('OAI')]);
    await run(['secrets', 'create', '--name', 'OTHER_TOKEN', '--value', canary('OTH')]);
    const cases: Array<[string[], number, string]> = [
      [['secrets', 'update', 'OPENAI_API_KEY', '--name', 'MY_OPENAI'], 4, 'SECRET_PINNED'],
      [['secrets', 'update', 'OTHER_TOKEN', '--name', 'STRIPE_SECRET_KEY'], 4, 'SECRET_PINNED'],
      [['secrets', 'update', 'OTHER_TOKEN', '--name', 'BILLING_TOKEN'], 4, 'SECRET_ALREADY_EXISTS'],
      [['secrets', 'update', 'OTHER_TOKEN', '--alias', 'ops'], 4, 'SECRET_ALREADY_EXISTS'],
      [['secrets', 'update', 'OTHER_TOKEN', '--alias', 'Not An Alias'], 2, 'INVALID_NAME'],
      [['secrets', 'update', 'OTHER_TOKEN'], 2, 'INVALID_ARGUMENT'],
      [['secrets', 'update', 'OTHER_TOKEN', '--id', id, '--alias', 'x1'], 2, 'INVALID_ARGUMENT'],
    ];
    for (const [args, code, error] of cases) {
      const r = await run([...args, '--json']);
      assert.deepEqual([r.code, (JSON.parse(r.stderr) as Err).error.code], [code, error], args.join(' '));
    }
    // The pinned secret still provisions its provider under its own name.
    const caps = JSON.parse((await run(['capability', 'describe', 'openai/models', '--json'])).stdout) as { ready: boolean };
    assert.equal(caps.ready, true);
  });
});
