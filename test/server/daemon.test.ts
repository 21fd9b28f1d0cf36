// The daemon in its own process; agents in others (the CLI, and this test process
// through the SDK). Owner commands run as separate CLI processes while it serves.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { isAivaultError } from '../../src/errors.ts';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { CLI, assertNoLeak, canary, tempVault, type TempVault, CHILD_ENV } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('aivault serve', () => {
  let v: TempVault;
  let up: Upstream;
  let daemon: ChildProcess;
  let socket: string;
  let daemonLog = '';
  const key = canary('DAEMON');
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const owner = async (args: string[]) => {
    const r = await v.cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const client = (name: string) => createAgentClient({ socketPath: socket, token: tokens[name]! });
  const raw = (path: string, token: string | undefined, body?: object) =>
    request(`http://aivault${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
      dispatcher: new Agent({ connect: { socketPath: socket } }),
    });

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    up.handle('/v1/slow', (_req, res) => void setTimeout(() => res.end('{"slow":true}'), 800));
    const ref = (await owner(['secrets', 'create', '--name', 'DAEMON_KEY', '--value', key])).trim();
    await owner(['credential', 'create', 'api', '--provider', 'api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network']);
    await owner(['capability', 'create', 'api/users', '--provider', 'api', '--credential', 'api', '--method', 'GET', '--method', 'POST', '--path', '/v1']);
    await owner(['capability', 'create', 'api/admin', '--provider', 'api', '--credential', 'api', '--method', 'GET', '--path', '/admin']);
    for (const name of ['bot', 'limited', 'getter', 'expiring', 'doomed']) {
      const created = JSON.parse(await owner(['agent', 'create', name, '--json'])) as { id: string; token: string };
      tokens[name] = created.token;
      ids[name] = created.id;
    }
    await owner(['grant', 'bot', 'api/users']);
    await owner(['grant', 'limited', 'api/users', '--rate', '2/min']);
    await owner(['grant', 'getter', 'api/users', '--methods', 'GET']);
    await owner(['grant', 'doomed', 'api/users']);
    socket = join(v.dir, 'd.sock');
    daemon = spawn(process.execPath, [CLI, 'serve', '--socket', socket], { env: { ...CHILD_ENV, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stderr!.on('data', (d: Buffer) => (daemonLog += d));
    const first = await new Promise<string>((resolve, reject) => {
      daemon.stdout!.once('data', (d: Buffer) => resolve(String(d)));
      daemon.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${daemonLog}`)));
    });
    assert.deepEqual(JSON.parse(first), { listening: { socket } });
  });
  after(async () => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
    await up.close();
    v.cleanup();
  });

  it('serves on a socket only its owner can use', () => {
    assert.equal(statSync(socket).mode & 0o777, 0o600);
  });

  it('an agent invokes with its token; the upstream gets the real key; the agent gets a scrubbed answer', async () => {
    const c = client('bot');
    try {
      const res = await c.invoke({ capability: 'api/users', method: 'POST', path: '/v1/users', body: '{"n":1}', headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 200);
      const echoed = await res.json<{ headers: Record<string, string>; body: string }>();
      assert.equal(echoed.headers.authorization, '[REDACTED]');
      assert.equal(echoed.body, '{"n":1}');
      assert.equal(up.received.at(-1)!.headers.authorization, `Bearer ${key}`);
      assert.deepEqual((await c.capabilities()).map((x) => x.id), ['api/users']);
    } finally {
      await c.close();
    }
  });

  it('the CLI acts as the agent when AIVAULT_SOCKET and AIVAULT_AGENT_TOKEN are set', async () => {
    const env = { AIVAULT_SOCKET: socket, AIVAULT_AGENT_TOKEN: tokens.bot!, AIVAULT_DIR: '/nonexistent' };
    const r = await v.cli(['invoke', 'api/users', '--path', '/v1/users/7', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(JSON.parse(r.stdout).body).url, '/v1/users/7');
    const caps = await v.cli(['capability', 'list', '--json'], { env });
    assert.deepEqual((JSON.parse(caps.stdout) as Array<{ id: string }>).map((c) => c.id), ['api/users']);
    const denied = await v.cli(['invoke', 'api/admin', '--json'], { env });
    assert.equal(denied.code, 7);
    assert.equal(JSON.parse(denied.stderr).error.code, 'CAPABILITY_NOT_GRANTED');
    for (const out of [r.stdout, r.stderr, caps.stdout, denied.stderr]) assertNoLeak(out, key, 'agent CLI output');
  });

  it('refuses unknown and missing tokens with 401, and never serves owner routes to agents', async () => {
    for (const token of [undefined, 'avt_not-a-real-token', tokens.bot!.slice(0, -2) + 'xx']) {
      const res = await raw('/v1/capabilities', token);
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['x-aivault-error'], 'AGENT_UNAUTHENTICATED');
      await res.body.dump();
    }
    const owner = await raw('/v1/owner/secrets', tokens.bot, { name: 'X' });
    assert.equal(owner.statusCode, 403);
    assert.equal(owner.headers['content-type'], 'application/problem+json');
    assert.equal(((await owner.body.json()) as { code: string }).code, 'OWNER_ROUTE');
    const nowhere = await raw('/v1/nowhere', tokens.bot);
    assert.deepEqual([nowhere.statusCode, nowhere.headers['x-aivault-error']], [404, 'ROUTE_NOT_FOUND']);
    assert.equal(((await nowhere.body.json()) as { type: string }).type, 'https://aivault.dev/errors/route-not-found');
  });

  it('an agent reaches only what it was granted: capability, methods, time', async () => {
    const denied = async (name: string, req: Parameters<ReturnType<typeof client>['invoke']>[0], code: string) => {
      const c = client(name);
      await assert.rejects(c.invoke(req), (e) => isAivaultError(e) && e.code === code, `${name} ${code}`).finally(() => c.close());
    };
    await denied('bot', { capability: 'api/admin', path: '/admin' }, 'CAPABILITY_NOT_GRANTED');
    await denied('getter', { capability: 'api/users', method: 'POST', path: '/v1/users' }, 'METHOD_NOT_ALLOWED');
    // Granted here, not in before(): under load the daemon's start-up could eat a short expiry.
    const { expiresAt } = (JSON.parse(await owner(['grant', 'expiring', 'api/users', '--expires', '6s', '--json'])) as { grants: Array<{ expiresAt: string }> }).grants[0]!;
    const c = client('expiring');
    assert.equal((await c.invoke({ capability: 'api/users', path: '/v1/x' })).status, 200);
    await c.close();
    await sleep(Math.max(0, Date.parse(expiresAt) - Date.now()) + 100);
    await denied('expiring', { capability: 'api/users', path: '/v1/x' }, 'GRANT_EXPIRED');
  });

  it('rate limits per agent and capability with 429 and Retry-After', async () => {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 3; i++) {
      const res = await raw('/v1/invoke', tokens.limited, { capability: 'api/users', path: '/v1/r' });
      statuses.push(res.statusCode);
      if (res.statusCode === 429) retryAfter = String(res.headers['retry-after']);
      await res.body.dump();
    }
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60);
    const other = await raw('/v1/invoke', tokens.bot, { capability: 'api/users', path: '/v1/r' });
    assert.equal(other.statusCode, 200, 'another agent has its own budget');
    await other.body.dump();
  });

  it('a revocation by the owner applies to the next request', async () => {
    const c = client('doomed');
    try {
      assert.equal((await c.invoke({ capability: 'api/users', path: '/v1/x' })).status, 200);
      await owner(['agent', 'revoke', 'doomed']);
      // Answered like an unknown token: a leaked token does not tell that it was once valid.
      await assert.rejects(c.invoke({ capability: 'api/users', path: '/v1/x' }), (e) => isAivaultError(e, 'AGENT_UNAUTHENTICATED') && /not known/.test(e.message));
      const stranger = await raw('/v1/invoke', `avt_${'x'.repeat(43)}`, { capability: 'api/users', path: '/v1/x' });
      const revokedAnswer = await raw('/v1/invoke', tokens.doomed!, { capability: 'api/users', path: '/v1/x' });
      assert.deepEqual([revokedAnswer.statusCode, await revokedAnswer.body.text()], [stranger.statusCode, await stranger.body.text()]);
      const audit = JSON.parse((await owner(['audit', 'list', '--json'])).toString()) as Array<{ action: string; reason: string | null }>;
      assert.ok(audit.some((r) => r.action === 'agent.authenticate' && r.reason === 'AGENT_REVOKED'), 'the audit log keeps the difference');
    } finally {
      await c.close();
    }
  });

  it('finishes in-flight requests on SIGTERM, flushes the audit log and exits 0', async () => {
    const c = client('bot');
    const inflight = c.invoke({ capability: 'api/users', path: '/v1/slow' });
    await sleep(250);
    daemon.kill('SIGTERM');
    const res = await inflight;
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { slow: true });
    await c.close();
    const code = await new Promise<number | null>((resolve) => (daemon.exitCode !== null ? resolve(daemon.exitCode) : daemon.once('exit', resolve)));
    assert.equal(code, 0, daemonLog);
    const verify = await v.cli(['audit', 'verify', '--json']);
    assert.equal(verify.code, 0, verify.stderr);
    const records = JSON.parse((await v.cli(['audit', 'list', '--json'])).stdout) as Array<{ actor: string; decision: string; reason: string | null; path: string | null; outcome: { status?: number } | null }>;
    assert.ok(records.some((r) => r.actor === `agent:${ids.bot}` && r.decision === 'allow' && r.path === '/v1/slow' && r.outcome?.status === 200), 'the in-flight request was audited to completion');
    assert.ok(records.some((r) => r.actor === `agent:${ids.getter}` && r.decision === 'deny' && r.reason === 'METHOD_NOT_ALLOWED'));
    assert.ok(records.some((r) => r.actor === `agent:${ids.limited}` && r.reason === 'RATE_LIMITED'));
    assertNoLeak(daemonLog, key, 'daemon log');
    for (const token of Object.values(tokens)) assert.equal(daemonLog.includes(token), false, 'an agent token in the daemon log');
  });
});
