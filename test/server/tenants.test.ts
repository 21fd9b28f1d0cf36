// Issue 19, "wildcard hosts let the agent choose the tenant", end to end: a daemon process,
// an agent holding only its token, the built-in supabase provider (`*.supabase.co`) and a
// loopback stand-in for the owner's own project.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAgentSide, type AgentSide } from '../helpers/agent-side.ts';
import { canary, type TempVault } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('a key for a multi-tenant service goes only to the tenant the owner bound', () => {
  let v: TempVault;
  let up: Upstream;
  let side: AgentSide;
  const key = canary('SUPA');

  before(async () => {
    up = await startUpstream();
    side = await startAgentSide(async (owner) => {
      await owner(['secrets', 'create', '--name', 'SUPABASE_SERVICE_ROLE_KEY', '--value', key]);
      return ['supabase/rest'];
    });
    ({ v } = side);
  });
  after(async () => {
    await side.close();
    await up.close();
  });

  const invoke = (host: string) => side.invoke('supabase/rest', { host, path: '/rest/v1/todos' });

  it('unbound, the wildcard provider is not ready, says why, and sends nothing', async () => {
    const listed = JSON.parse((await v.cli(['capability', 'describe', 'supabase/rest', '--json'])).stdout) as { ready: boolean; missingSecrets: string[] };
    assert.equal(listed.ready, false);
    assert.match(listed.missingSecrets.join(' '), /tenant host for \*\.supabase\.co/);
    const r = await invoke('attacker-project.supabase.co');
    assert.deepEqual([r.status, r.code], [403, 'CREDENTIAL_NOT_READY'], r.text);
    assert.equal(up.received.length, 0);
  });

  it('bound, the key reaches the owner\'s tenant and no other, with nothing sent to another', async () => {
    const bound = await v.cli(['endpoint', 'set', 'supabase', '--tenant', 'MyProject.supabase.co', '--map', `myproject.supabase.co=${up.host}`, '--allow-http', '--allow-private-network']);
    assert.equal(bound.code, 0, bound.stderr);
    assert.match(bound.stdout, /\*\.supabase\.co bound to myproject\.supabase\.co/);
    const good = await invoke('myproject.supabase.co');
    assert.equal(good.status, 200, good.text);
    assert.equal(up.received.at(-1)!.headers.apikey, key);
    const before = up.received.length;
    for (const host of ['attacker-project.supabase.co', 'myproject-evil.supabase.co', 'x.myproject.supabase.co']) {
      const r = await invoke(host);
      assert.equal(r.status, 403, `${host}: ${r.text}`);
      assert.ok(['HOST_NOT_ALLOWED'].includes(String(r.code)), `${host}: ${r.code}`);
      assert.equal(r.text.includes(key), false);
    }
    assert.equal(up.received.length, before, 'no other tenant was contacted');
    const described = JSON.parse((await v.cli(['capability', 'describe', 'supabase/rest', '--json'])).stdout) as { ready: boolean; tenants: Record<string, string[]> };
    assert.equal(described.ready, true);
    assert.deepEqual(described.tenants, { '*.supabase.co': ['myproject.supabase.co'] });
  });

  it('a tenant must be a concrete host under one of the provider\'s wildcards', async () => {
    for (const tenant of ['*.supabase.co', 'evil.example.com', 'supabase.co', 'a.b.supabase.co', 'x.supabase.co:8443']) {
      const r = await v.cli(['endpoint', 'set', 'supabase', '--tenant', tenant]);
      assert.equal(r.code, 2, `${tenant}: ${r.stderr}`);
      assert.match(r.stderr, /INVALID_ARGUMENT/);
    }
    const openai = await v.cli(['endpoint', 'set', 'openai', '--tenant', 'x.openai.com']);
    assert.equal(openai.code, 2, 'a provider without wildcard hosts has no tenants');
  });

  it('a custom credential with a wildcard host needs the owner\'s acknowledgement, which the audit log keeps', async () => {
    const ref = (await v.cli(['secrets', 'create', '--name', 'WILD_KEY', '--value', canary('WILD')])).stdout.trim();
    const args = ['credential', 'create', 'wild', '--provider', 'wild', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', '*.example.test'];
    const refused = await v.cli(args);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /INVALID_ARGUMENT.*every host under it/);
    const made = await v.cli([...args, '--any-tenant']);
    assert.equal(made.code, 0, made.stderr);
    const records = JSON.parse((await v.cli(['audit', 'list', '--json'])).stdout) as Array<{ action: string; target: string | null; reason: string | null }>;
    const created = records.find((r) => r.action === 'credential.create' && r.target === 'credential:wild');
    assert.equal(created?.reason, 'any tenant of *.example.test acknowledged');
  });
});
