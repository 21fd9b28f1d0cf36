// What an agent holds is what it is still waiting for: when it hangs up, the exchange it
// started upstream is cut, and an MCP request carries one call. (An attacker hung up on
// 4,000 invokes, each still running upstream without a slot, and took the daemon to 7 GB.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { canary } from '../helpers/cli.ts';
import { startAgentSide, type AgentSide } from '../helpers/agent-side.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('a caller that goes away', () => {
  let up: Upstream;
  let side: AgentSide;
  /** Requests the upstream received and whether each was cut before it answered. */
  const seen: Array<{ cut: boolean }> = [];

  before(async () => {
    up = await startUpstream();
    // Never answers: only a cut ends the request.
    up.handle('/v1/hang', (req) => {
      const entry = { cut: false };
      seen.push(entry);
      req.socket.once('close', () => (entry.cut = true));
    });
    side = await startAgentSide(async (owner) => {
      const ref = (await owner(['secrets', 'create', '--name', 'GONE_KEY', '--value', canary('GONE')])).trim();
      await owner(['credential', 'create', 'gone', '--provider', 'gone', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-api-key', '--host', up.host, '--allow-http', '--allow-private-network']);
      await owner(['capability', 'create', 'gone/api', '--provider', 'gone', '--credential', 'gone', '--method', 'GET', '--method', 'POST', '--path', '/v1']);
      return ['gone/api'];
    });
  });
  after(async () => {
    await side.close();
    await up.close();
  });

  const waitFor = async (check: () => boolean, what: string) => {
    for (let i = 0; i < 100 && !check(); i++) await sleep(50);
    assert.ok(check(), what);
  };

  it('cuts the exchange upstream (not at the capability timeout) and records CLIENT_GONE', async () => {
    for (const route of ['/v1/invoke', '/gw/gone/v1/hang'] as const) {
      const before = seen.length;
      const controller = new AbortController();
      const body = route === '/v1/invoke' ? JSON.stringify({ capability: 'gone/api', method: 'GET', path: '/v1/hang' }) : undefined;
      const sent = request(`http://aivault${route}`, { method: body ? 'POST' : 'GET', headers: { authorization: `Bearer ${side.token}`, 'content-type': 'application/json' }, ...(body ? { body } : {}), dispatcher: side.dispatcher, signal: controller.signal }).catch(() => undefined);
      await waitFor(() => seen.length > before, `${route}: the upstream got the request`);
      controller.abort();
      await sent;
      // The capability's timeout is 30 s: only the hang-up can end it this soon.
      await waitFor(() => seen[before]!.cut, `${route}: the upstream request was cut when the agent hung up`);
    }
    type Row = { action: string; outcome: { error?: string } | null };
    let invokes: Row[] = [];
    // Outcomes are written as the daemon's audit batches commit.
    for (let i = 0; i < 40; i++) {
      invokes = (JSON.parse(await side.owner(['audit', 'list', '--capability', 'gone/api', '--json'])) as Row[]).filter((r) => r.action === 'invoke');
      if (invokes.every((r) => r.outcome)) break;
      await sleep(100);
    }
    assert.equal(invokes.length, 2);
    for (const r of invokes) assert.equal(r.outcome?.error, 'CLIENT_GONE', JSON.stringify(r));
  });

  it('refuses a JSON-RPC batch on /mcp: one request, one call', async () => {
    const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'invoke', arguments: { capability: 'gone/api', method: 'GET', path: '/v1/x' } } });
    const before = up.received.length;
    const res = await request('http://aivault/mcp', {
      method: 'POST',
      headers: { authorization: `Bearer ${side.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify([call(1), call(2), call(3)]),
      dispatcher: side.dispatcher,
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 400, text);
    assert.equal(res.headers['x-aivault-error'], 'INVALID_ARGUMENT');
    assert.equal(up.received.length, before, 'nothing was sent upstream');
  });
});
