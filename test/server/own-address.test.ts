// Issue 20: what `--allow-private-network` unlocks. A daemon process whose owner allowed
// private targets still refuses to call itself (its own address and port, by IP or by name,
// over HTTP and WebSocket), with a policy code, before any connection is made.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import WebSocket from 'ws';
import { recorder, tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

describe('the daemon never calls itself, whatever the owner allowed', () => {
  let v: TempVault;
  let daemon: RunningDaemon;
  let token: string;
  let port: string;
  const { run } = recorder(() => v);
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const asAgent = (args: string[]) => run(args, { env: { AIVAULT_AGENT_TOKEN: token, AIVAULT_URL: daemon.url!, AIVAULT_DIR: `${v.dir}-none` } });

  before(async () => {
    v = await tempVault();
    daemon = await startDaemon(v, ['--listen', '127.0.0.1:0']);
    port = new URL(daemon.url!).port;
    // Defined while the daemon runs: it takes them up at its next request.
    const ref = ok(await run(['secrets', 'create', '--name', 'SELF_KEY', '--value', 'self-key-0123456789'])).trim();
    ok(await run(['credential', 'create', 'self', '--provider', 'self', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', `127.0.0.1:${port}`, '--host', `localhost:${port}`, '--allow-http', '--allow-private-network']));
    ok(await run(['capability', 'create', 'self/api', '--provider', 'self', '--credential', 'self', '--method', 'GET', '--path', '/v1', '--websocket']));
    token = (JSON.parse(ok(await run(['agent', 'create', 'loop', '--json']))) as { token: string }).token;
    ok(await run(['grant', 'loop', 'self/api']));
    // One host each, for the WebSocket gateway (which takes a capability's only host).
    for (const [provider, host] of [['ws127', '127.0.0.1'], ['wslocal', 'localhost']] as const) {
      ok(await run(['credential', 'create', provider, '--provider', provider, '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--host', `${host}:${port}`, '--allow-http', '--allow-private-network']));
      ok(await run(['capability', 'create', `${provider}/stream`, '--provider', provider, '--credential', provider, '--method', 'GET', '--path', '/v1', '--websocket']));
      ok(await run(['grant', 'loop', `${provider}/stream`]));
    }
  });
  after(async () => {
    await daemon?.stop();
    v.cleanup();
  });

  for (const [host, wsProvider] of [['127.0.0.1', 'ws127'], ['localhost', 'wslocal']] as const) {
    it(`refuses ${host}:<the daemon's port> through /v1/invoke, the CLI and WebSocket`, async () => {
      const res = await request(`${daemon.url}/v1/invoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ capability: 'self/api', host: `${host}:${port}`, path: '/v1/capabilities' }),
      });
      const body = await res.body.text();
      assert.equal(res.statusCode, 403, body);
      assert.equal(res.headers['x-aivault-error'], 'PRIVATE_ADDRESS_BLOCKED');
      assert.match(body, /own listening address/);

      const cli = await asAgent(['invoke', 'self/api', '--host', `${host}:${port}`, '--path', '/v1/capabilities']);
      assert.equal(cli.code, 7, cli.stderr);
      assert.match(cli.stderr, /PRIVATE_ADDRESS_BLOCKED/);

      const refused = await new Promise<{ status: number; code: unknown }>((resolve, reject) => {
        const ws = new WebSocket(`${daemon.url!.replace(/^http/, 'ws')}/gw/${wsProvider}/v1/stream`, { headers: { authorization: `Bearer ${token}` } });
        ws.once('unexpected-response', (_req, r) => resolve({ status: r.statusCode!, code: r.headers['x-aivault-error'] }));
        ws.once('open', () => reject(new Error('the upgrade to the daemon itself was admitted')));
        ws.once('error', reject);
      });
      assert.deepEqual(refused, { status: 403, code: 'PRIVATE_ADDRESS_BLOCKED' });
    });
  }

  it('the refusals are audited as denials or failed calls, and none reached the daemon as an upstream request', async () => {
    const log = daemon.log();
    // The daemon logs every request it serves; a self-call would show as a request without an agent.
    assert.equal(/"route":"capabilities"/.test(log), false, 'no request reached GET /v1/capabilities');
    const audit = JSON.parse(ok(await run(['audit', 'list', '--json']))) as Array<{ action: string; decision: string; reason: string | null; error?: string | null }>;
    assert.ok(audit.some((r) => r.action === 'invoke' && (r.reason === 'PRIVATE_ADDRESS_BLOCKED' || r.error === 'PRIVATE_ADDRESS_BLOCKED')));
  });
});
