// Scopes and execution contexts, end to end: agents bound by the owner to a workspace or a
// group invoke through a daemon process; the stand-in upstream records which key arrived.
// A group secret serves only its group, a workspace secret its groups, a global secret a
// group only once attached; an agent cannot pick another context.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNoLeak, canary, recorder, runCli, tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';
import { post } from '../helpers/cluster.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('scopes: workspaces, groups, attached global secrets', () => {
  let v: TempVault;
  let up: Upstream;
  let daemon: RunningDaemon;
  const keys = { global: canary('GLOBALKEY'), acme: canary('ACMEKEY'), ml: canary('MLKEY'), custom: canary('CUSTOMKEY') };
  const tokens: Record<string, string> = {};
  const { run, outputs } = recorder(() => v);
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  /** Invokes openai/models as `agent` through the daemon; returns the exit code, error and the key that reached the stand-in. */
  const invokeAs = async (agent: string, capability = 'openai/models', path = '/v1/models', extra: string[] = []) => {
    const before = up.received.length;
    const r = await runCli(['invoke', capability, '--path', path, ...extra], { env: { ...v.env, AIVAULT_SOCKET: daemon.socket!, AIVAULT_AGENT_TOKEN: tokens[agent]! } });
    outputs.push(r.stdout, r.stderr);
    const sent = up.received.slice(before);
    const auth = sent.map((s) => String(s.headers.authorization ?? s.headers['x-key'] ?? ''));
    return { code: r.code, error: /error ([A-Z_]+)/.exec(r.stderr)?.[1], keys: auth };
  };

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    ok(await run(['endpoint', 'set', 'openai', '--map', `api.openai.com=${up.host}`, '--allow-http', '--allow-private-network']));
    ok(await run(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', keys.global]));
    ok(await run(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', keys.acme, '--scope', 'workspace', '--workspace-id', 'acme']));
    ok(await run(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', keys.ml, '--scope', 'group:acme/ml']));
    for (const [name, ctx] of [['root', []], ['ws', ['--workspace-id', 'acme']], ['ml', ['--workspace-id', 'acme', '--group-id', 'ml']], ['ops', ['--workspace-id', 'acme', '--group-id', 'ops']], ['beta', ['--workspace-id', 'beta', '--group-id', 'x']]] as const) {
      tokens[name] = (JSON.parse(ok(await run(['agent', 'create', name, ...ctx, '--json']))) as { token: string }).token;
      ok(await run(['grant', name, 'openai/models']));
    }
    daemon = await startDaemon(v, ['--socket', join(v.dir, 'd.sock')]);
  });
  after(async () => {
    await daemon?.stop();
    await up.close();
    for (const o of outputs) for (const k of Object.values(keys)) assertNoLeak(o, k, 'CLI output');
    v.cleanup();
  });

  it('each agent gets the most specific secret that serves its context', async () => {
    assert.deepEqual(await invokeAs('root'), { code: 0, error: undefined, keys: [`Bearer ${keys.global}`] });
    assert.deepEqual(await invokeAs('ws'), { code: 0, error: undefined, keys: [`Bearer ${keys.acme}`] });
    assert.deepEqual(await invokeAs('ml'), { code: 0, error: undefined, keys: [`Bearer ${keys.ml}`] }, 'the group secret first');
    assert.deepEqual(await invokeAs('ops'), { code: 0, error: undefined, keys: [`Bearer ${keys.acme}`] }, "another group of acme falls back to the workspace's secret");
  });

  it('the owner sees readiness per context; an agent sees its own', async () => {
    const describe = async (...ctx: string[]) => JSON.parse(ok(await run(['capability', 'describe', 'openai/models', ...ctx, '--json']))) as { ready: boolean; secretScope: string; outOfScope: string[] };
    assert.deepEqual(await describe('--workspace-id', 'acme', '--group-id', 'ml'), { ...(await describe('--workspace-id', 'acme', '--group-id', 'ml')), ready: true, secretScope: 'group:acme/ml', outOfScope: [] });
    const beta = await describe('--workspace-id', 'beta', '--group-id', 'x');
    assert.deepEqual([beta.ready, beta.outOfScope], [false, ['OPENAI_API_KEY']]);
    assert.equal((await describe()).secretScope, 'global');
    const asAgent = await runCli(['capability', 'list', '--json'], { env: { ...v.env, AIVAULT_SOCKET: daemon.socket!, AIVAULT_AGENT_TOKEN: tokens.beta! } });
    assert.deepEqual((JSON.parse(asAgent.stdout) as Array<{ id: string; ready: boolean }>).map((c) => [c.id, c.ready]), [['openai/models', false]]);
  });

  it("a global secret serves a group only while attached to it", async () => {
    assert.deepEqual(await invokeAs('beta'), { code: 7, error: 'SECRET_OUT_OF_SCOPE', keys: [] }, 'nothing upstream');
    const attached = JSON.parse(ok(await run(['secrets', 'attach-group', 'OPENAI_API_KEY', '--scope', 'global', '--workspace-id', 'beta', '--group-id', 'x', '--json']))) as { groups: string[] };
    assert.deepEqual(attached.groups, ['beta/x']);
    assert.deepEqual(await invokeAs('beta'), { code: 0, error: undefined, keys: [`Bearer ${keys.global}`] }, 'the running daemon sees the attachment at once');
    // Attached to beta/x is not attached to beta/y, nor to the workspace.
    ok(await run(['agent', 'context', 'beta', '--workspace-id', 'beta', '--group-id', 'y']));
    assert.equal((await invokeAs('beta')).error, 'SECRET_OUT_OF_SCOPE');
    ok(await run(['agent', 'context', 'beta', '--workspace-id', 'beta', '--group-id', 'x']));
    const detached = await run(['secrets', 'detach-group', '--id', (JSON.parse(ok(await run(['secrets', 'list', '--json']))) as Array<{ id: string; scope: string }>).find((s) => s.scope === 'global')!.id, '--workspace-id', 'beta', '--group-id', 'x']);
    ok(detached);
    assert.deepEqual(await invokeAs('beta'), { code: 7, error: 'SECRET_OUT_OF_SCOPE', keys: [] });
  });

  it('attach and detach refuse what makes no sense, changing nothing', async () => {
    const cases: Array<[string[], string]> = [
      [['secrets', 'attach-group', 'OPENAI_API_KEY', '--scope', 'workspace:acme', '--workspace-id', 'acme', '--group-id', 'ml'], 'INVALID_SCOPE'],
      [['secrets', 'detach-group', 'OPENAI_API_KEY', '--scope', 'global', '--workspace-id', 'beta', '--group-id', 'x'], 'GROUP_NOT_ATTACHED'],
      [['secrets', 'attach-group', 'OPENAI_API_KEY', '--scope', 'global', '--workspace-id', 'Bad!', '--group-id', 'x'], 'INVALID_SCOPE'],
      [['secrets', 'attach-group', 'OPENAI_API_KEY', '--workspace-id', 'beta', '--group-id', 'x'], 'SECRET_AMBIGUOUS'],
      [['secrets', 'create', '--name', 'X_KEY', '--value', 'x', '--scope', 'group', '--workspace-id', 'acme'], 'INVALID_SCOPE'],
      [['secrets', 'create', '--name', 'X_KEY', '--value', 'x', '--scope', 'group:ml'], 'INVALID_SCOPE'],
      [['agent', 'create', 'nogroup', '--group-id', 'ml'], 'INVALID_SCOPE'],
    ];
    for (const [args, code] of cases) {
      const r = await run(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, new RegExp(`error ${code}`), `${args.join(' ')}: ${r.stderr}`);
    }
    ok(await run(['secrets', 'attach-group', 'OPENAI_API_KEY', '--scope', 'global', '--workspace-id', 'beta', '--group-id', 'x']));
    const twice = await run(['secrets', 'attach-group', 'OPENAI_API_KEY', '--scope', 'global', '--workspace-id', 'beta', '--group-id', 'x']);
    assert.match(twice.stderr, /error GROUP_ALREADY_ATTACHED/);
    ok(await run(['secrets', 'detach-group', 'OPENAI_API_KEY', '--scope', 'global', '--workspace-id', 'beta', '--group-id', 'x']));
    assert.equal((await run(['secrets', 'list', '--json'])).stdout.includes('"X_KEY"'), false);
  });

  it('a custom credential over a group secret serves that group only', async () => {
    const ref = ok(await run(['secrets', 'create', '--name', 'ML_CUSTOM_KEY', '--value', keys.custom, '--scope', 'group:acme/ml'])).trim();
    ok(await run(['credential', 'create', 'mlapi', '--provider', 'mlapi', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', up.host, '--allow-http', '--allow-private-network']));
    ok(await run(['capability', 'create', 'mlapi/data', '--provider', 'mlapi', '--credential', 'mlapi', '--method', 'GET', '--path', '/v1']));
    for (const agent of ['ml', 'ops', 'ws', 'root']) ok(await run(['grant', agent, 'mlapi/data']));
    assert.deepEqual(await invokeAs('ml', 'mlapi/data', '/v1/x'), { code: 0, error: undefined, keys: [keys.custom] });
    for (const agent of ['ops', 'ws', 'root']) assert.deepEqual(await invokeAs(agent, 'mlapi/data', '/v1/x'), { code: 7, error: 'SECRET_OUT_OF_SCOPE', keys: [] }, agent);
    // The owner's own invoke picks a context explicitly.
    assert.equal((await run(['invoke', 'mlapi/data', '--path', '/v1/x'])).stderr.match(/error ([A-Z_]+)/)?.[1], 'SECRET_OUT_OF_SCOPE');
    const before = up.received.length;
    ok(await run(['invoke', 'mlapi/data', '--path', '/v1/x', '--workspace-id', 'acme', '--group-id', 'ml']));
    assert.equal(up.received.slice(before)[0]?.headers['x-key'], keys.custom);
  });

  it('an agent cannot choose its context: not by CLI flag, not by an extra API field', async () => {
    const flagged = await invokeAs('ops', 'openai/models', '/v1/models', ['--workspace-id', 'acme', '--group-id', 'ml']);
    assert.equal(flagged.code, 2);
    assert.equal(flagged.error, 'INVALID_ARGUMENT');
    assert.deepEqual(flagged.keys, []);
    // Straight to the daemon's API with a context field: refused before anything is sent.
    const tcp = await startDaemon(v, ['--socket', join(v.dir, 't.sock'), '--listen', '127.0.0.1:0']);
    try {
      const before = up.received.length;
      for (const field of ['scope', 'context', 'workspaceId', 'groupId']) {
        const r = await post(tcp, '/v1/invoke', { authorization: `Bearer ${tokens.ops}` }, JSON.stringify({ capability: 'openai/models', method: 'GET', path: '/v1/models', [field]: field === 'scope' || field === 'context' ? 'group:acme/ml' : 'ml' }));
        assert.equal(r.status, 400, field);
      }
      assert.equal(up.received.length, before);
    } finally {
      await tcp.stop();
    }
  });

  it('the audit record names the credential, where its secret lives and for whom', async () => {
    const records = JSON.parse(ok(await run(['audit', 'list', '--json', '--limit', '1000']))) as Array<{ action: string; decision: string; target: string | null; reason: string | null }>;
    const allowed = records.filter((r) => r.action === 'invoke' && r.decision === 'allow').map((r) => r.target);
    assert.ok(allowed.includes('credential:openai'), JSON.stringify(allowed));
    assert.ok(allowed.includes('credential:openai@workspace:acme for workspace:acme'));
    assert.ok(allowed.includes('credential:openai@group:acme/ml for group:acme/ml'));
    assert.ok(allowed.includes('credential:openai@workspace:acme for group:acme/ops'));
    assert.ok(allowed.includes('credential:openai for group:beta/x'));
    assert.ok(records.some((r) => r.action === 'invoke' && r.decision === 'deny' && r.reason === 'SECRET_OUT_OF_SCOPE'));
    assert.ok(records.some((r) => r.action === 'secret.attach-group' && r.target === 'secret:OPENAI_API_KEY@global group:beta/x'));
    assert.ok(records.some((r) => r.action === 'agent.context'));
    ok(await run(['audit', 'verify']));
  });
});
