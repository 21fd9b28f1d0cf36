// WebSocket passthrough on the gateway, end to end: a daemon process, an agent holding only
// its token (the `ws` client), and a real WebSocket server on loopback standing in for
// OpenAI's Realtime API. The upgrade carries the real key upstream; server messages are
// scrubbed; every refusal happens before anything reaches the upstream, and is audited.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { assertNoLeak, canary, encodings, recorder, tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { isAivaultError } from '../../src/errors.ts';

interface StandIn {
  host: string;
  upgrades: IncomingMessage[];
  close(): Promise<void>;
}

/** A WebSocket upstream: echoes, leaks the key on request, refuses upgrades to /v1/realtime/refuse. */
async function startStandIn(key: string): Promise<StandIn> {
  const upgrades: IncomingMessage[] = [];
  const http: Server = createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => (offered.has('realtime') ? 'realtime' : false) });
  http.on('upgrade', (req, socket, head) => {
    upgrades.push(req);
    if (req.url?.startsWith('/v1/realtime/refuse')) {
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":"bad key ${String(req.headers.authorization)}"}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        const text = data.toString();
        if (text === 'leak') {
          ws.send(`{"type":"session.created","echo":"${key}","b64":"${Buffer.from(key).toString('base64')}"}`);
          ws.send(Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(key), Buffer.from([3])]), { binary: true });
        } else if (text === 'close-me') {
          ws.close(4001, `done with ${key}`);
        } else if (text.startsWith('big:')) {
          ws.send('x'.repeat(Number(text.slice(4))));
        } else {
          ws.send(data, { binary: isBinary });
        }
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(http.address() as AddressInfo).port}`,
    upgrades,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

interface Opened {
  ws: WebSocket;
  /** The daemon's 101 response headers. */
  headers: IncomingMessage['headers'];
  messages: Array<{ data: Buffer; binary: boolean }>;
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a WebSocket to the daemon's gateway; resolves once open, or rejects with the HTTP refusal. */
function open(url: string, headers: Record<string, string>, protocols: string[] = []): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    const messages: Opened['messages'] = [];
    ws.on('message', (data, binary) => messages.push({ data: data as Buffer, binary }));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    let answered: IncomingMessage['headers'] = {};
    ws.once('upgrade', (res) => (answered = res.headers));
    ws.once('open', () => resolve({ ws, headers: answered, messages, closed }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, code: res.headers['x-aivault-error'], upstreamStatus: res.headers['x-aivault-upstream-status'], body: Buffer.concat(chunks).toString() })));
    });
    ws.once('error', (err) => reject(err));
  });
}

async function nextMessages(o: Opened, count: number): Promise<Opened['messages']> {
  for (let i = 0; i < 200 && o.messages.length < count; i++) await new Promise((r) => setTimeout(r, 10));
  return o.messages.splice(0, count);
}

describe('WebSocket passthrough on the gateway', () => {
  let v: TempVault;
  let up: StandIn;
  let daemon: RunningDaemon;
  let token: string;
  let base: string;
  const key = canary('REALTIMEKEY');
  const customKey = canary('CUSTOMWSKEY');
  const seen: string[] = [];
  const { run, outputs } = recorder(() => v);
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  before(async () => {
    v = await tempVault();
    up = await startStandIn(key);
    ok(await run(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', key]));
    ok(await run(['endpoint', 'set', 'openai', '--map', `api.openai.com=${up.host}`, '--allow-http', '--allow-private-network']));
    const ref = ok(await run(['secrets', 'create', '--name', 'WS_CUSTOM_KEY', '--value', customKey])).trim();
    ok(await run(['credential', 'create', 'wsapi', '--provider', 'wsapi', '--secret-ref', ref, '--auth', 'query', '--param-name', 'token', '--host', up.host, '--allow-http', '--allow-private-network']));
    ok(await run(['capability', 'create', 'wsapi/stream', '--provider', 'wsapi', '--credential', 'wsapi', '--method', 'GET', '--path', '/v1/realtime', '--websocket', '--max-request-bytes', '1024', '--max-response-bytes', '2048']));
    token = (JSON.parse(ok(await run(['agent', 'create', 'voice', '--json']))) as { token: string }).token;
    for (const cap of ['openai/realtime', 'openai/models', 'wsapi/stream']) ok(await run(['grant', 'voice', cap]));
    daemon = await startDaemon(v, ['--socket', join(v.dir, 'd.sock'), '--listen', '127.0.0.1:0']);
    base = daemon.url!.replace(/^http/, 'ws');
  });
  after(async () => {
    await daemon?.stop();
    await up.close();
    for (const s of [...seen, ...outputs, daemon?.log() ?? '']) {
      assertNoLeak(s, key, 'what the agent saw');
      assertNoLeak(s, customKey, 'what the agent saw');
    }
    v.cleanup();
  });

  it('the upgrade carries the real key upstream; messages relay both ways; subprotocol and query pass', async () => {
    const o = await open(`${base}/gw/openai/v1/realtime?model=gpt-realtime`, { authorization: `Bearer ${token}` }, ['realtime']);
    assert.equal(o.ws.protocol, 'realtime');
    const upgrade = up.upgrades.at(-1)!;
    assert.equal(upgrade.headers.authorization, `Bearer ${key}`);
    assert.equal(upgrade.url, '/v1/realtime?model=gpt-realtime');
    assert.equal(upgrade.headers.origin, undefined);
    // The planned request, as for an invoke: the provider URL as addressed (not the stand-in behind the override).
    assert.equal(o.headers['x-aivault-credential'], 'openai');
    assert.equal(o.headers['x-aivault-upstream-url'], 'wss://api.openai.com/v1/realtime?model=gpt-realtime');
    o.ws.send('{"type":"session.update"}');
    o.ws.send(Buffer.from([9, 8, 7]), { binary: true });
    const [text, binary] = await nextMessages(o, 2);
    assert.deepEqual([text!.data.toString(), text!.binary], ['{"type":"session.update"}', false]);
    assert.deepEqual([[...binary!.data], binary!.binary], [[9, 8, 7], true]);
    o.ws.close(1000, 'bye');
    assert.equal((await o.closed).code, 1000);
  });

  it('server messages are scrubbed of the key in every form, text and binary, and in the close reason', async () => {
    const o = await open(`${base}/gw/openai/v1/realtime`, { 'x-api-key': token });
    assert.equal(up.upgrades.at(-1)!.headers['x-api-key'], undefined, 'the agent token stays here');
    assert.equal(up.upgrades.at(-1)!.headers.authorization, `Bearer ${key}`);
    o.ws.send('leak');
    const [text, binary] = await nextMessages(o, 2);
    seen.push(text!.data.toString(), binary!.data.toString('latin1'));
    assert.equal(JSON.parse(text!.data.toString()).echo, '[REDACTED]');
    assert.equal(JSON.parse(text!.data.toString()).b64, '[REDACTED]');
    assert.deepEqual([...binary!.data.subarray(0, 3)], [0, 1, 2]);
    assert.equal(binary!.data.subarray(3, -1).toString(), '[REDACTED]');
    o.ws.send('close-me');
    const closed = await o.closed;
    seen.push(closed.reason);
    assert.equal(closed.code, 4001, 'the upstream close code is relayed');
    assert.equal(closed.reason, 'done with [REDACTED]');
    for (const e of encodings(key)) for (const s of seen) assert.ok(!s.includes(e));
  });

  it('refusals come as HTTP answers to the upgrade, and nothing reaches the upstream', async () => {
    const before = up.upgrades.length;
    const cases: Array<[string, Record<string, string>, number, string]> = [
      [`${base}/gw/openai/v1/realtime`, { authorization: 'Bearer avt_wrong' }, 401, 'AGENT_UNAUTHENTICATED'],
      [`${base}/gw/openai/v1/realtime`, {}, 401, 'AGENT_UNAUTHENTICATED'],
      [`${base}/gw/openai/v1/models`, { authorization: `Bearer ${token}` }, 403, 'WEBSOCKET_NOT_ALLOWED'],
      [`${base}/gw/openai/v1/files`, { authorization: `Bearer ${token}` }, 403, 'CAPABILITY_NOT_GRANTED'],
      [`${base}/gw/openai/v1/realtime`, { authorization: `Bearer ${token}`, origin: 'https://evil.example' }, 403, 'ORIGIN_REFUSED'],
      [`${base}/v1/invoke`, { authorization: `Bearer ${token}` }, 400, 'INVALID_ARGUMENT'],
    ];
    for (const [url, headers, status, code] of cases) {
      await assert.rejects(open(url, headers), (e: { status?: number; code?: string }) => e.status === status && e.code === code, `${url} ${JSON.stringify(headers)}`);
    }
    // Sent raw: a dot segment (a WHATWG client would normalise it away before sending), and broken handshakes.
    const rawUpgrade = (path: string, extra: Record<string, string>) =>
      new Promise<{ status: number; code: unknown }>((resolve, reject) => {
        const { hostname, port } = new URL(daemon.url!);
        request({ hostname, port, path, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', authorization: `Bearer ${token}`, ...extra } })
          .on('response', (res) => {
            res.resume();
            resolve({ status: res.statusCode!, code: res.headers['x-aivault-error'] });
          })
          .on('upgrade', () => reject(new Error('upgraded')))
          .on('error', reject)
          .end();
      });
    const raw = await rawUpgrade('/gw/openai/v1/realtime/../models', {});
    assert.deepEqual(await rawUpgrade('/gw/openai/v1/realtime', { 'sec-websocket-key': 'short' }), { status: 400, code: 'INVALID_ARGUMENT' });
    assert.deepEqual(await rawUpgrade('/gw/openai/v1/realtime', { 'sec-websocket-version': '8' }), { status: 400, code: 'INVALID_ARGUMENT' });
    assert.deepEqual(raw, { status: 403, code: 'MALFORMED_PATH' });
    assert.equal(up.upgrades.length, before);
  });

  it('an upstream that refuses the upgrade: its status is reported, its body (which echoes the key) is not', async () => {
    await assert.rejects(open(`${base}/gw/openai/v1/realtime/refuse`, { authorization: `Bearer ${token}` }), (e: { status?: number; code?: string; upstreamStatus?: string; body?: string }) => {
      seen.push(e.body ?? '');
      return e.status === 502 && e.code === 'UPSTREAM_ERROR' && e.upstreamStatus === '401' && /HTTP 401/.test(e.body ?? '');
    });
  });

  it("a custom capability: a query credential, and the capability's message size limits", async () => {
    const o = await open(`${base}/gw/wsapi/v1/realtime`, { authorization: `Bearer ${token}` });
    assert.equal(new URL(up.upgrades.at(-1)!.url!, 'http://x').searchParams.get('token'), customKey);
    assert.equal(o.headers['x-aivault-upstream-url'], `ws://${up.host}/v1/realtime?token=[REDACTED]`, 'the query credential is redacted');
    o.ws.send('big:100');
    assert.equal((await nextMessages(o, 1))[0]!.data.length, 100);
    o.ws.send('big:4096');
    const closed = await o.closed;
    assert.equal(closed.code, 1009, 'a server message over --max-response-bytes ends the session');
    const o2 = await open(`${base}/gw/wsapi/v1/realtime`, { authorization: `Bearer ${token}` });
    o2.ws.send('y'.repeat(2000));
    assert.equal((await o2.closed).code, 1009, 'an agent message over --max-request-bytes ends the session');
  });

  it('the upstream connection honours the private-address rule: a name resolving to loopback is refused unless allowed', async () => {
    const port = up.host.split(':')[1];
    const ref = ok(await run(['secrets', 'create', '--name', 'WS_LOCAL_KEY', '--value', customKey])).trim();
    ok(await run(['credential', 'create', 'wslocal', '--provider', 'wslocal', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', `localhost:${port}`, '--allow-http']));
    ok(await run(['capability', 'create', 'wslocal/stream', '--provider', 'wslocal', '--credential', 'wslocal', '--method', 'GET', '--path', '/v1/realtime', '--websocket']));
    ok(await run(['grant', 'voice', 'wslocal/stream']));
    const before = up.upgrades.length;
    await assert.rejects(open(`${base}/gw/wslocal/v1/realtime`, { authorization: `Bearer ${token}` }), (e: { status?: number; code?: string }) => e.status === 403 && e.code === 'PRIVATE_ADDRESS_BLOCKED');
    assert.equal(up.upgrades.length, before, 'no connection was made');
  });

  it('the agent SDK opens one over the Unix socket; a refusal rejects with the error code', async () => {
    const agent = createAgentClient({ socketPath: daemon.socket!, token });
    try {
      const ws = await agent.webSocket('openai', '/v1/realtime?model=gpt-realtime', { protocols: ['realtime'] });
      assert.equal(ws.protocol, 'realtime');
      const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
      ws.send('{"type":"response.create"}');
      assert.equal(await echoed, '{"type":"response.create"}');
      ws.close();
      await assert.rejects(agent.webSocket('openai', '/v1/models'), (e) => isAivaultError(e, 'WEBSOCKET_NOT_ALLOWED'));
      const stranger = createAgentClient({ socketPath: daemon.socket!, token: 'avt_wrong' });
      await assert.rejects(stranger.webSocket('openai', '/v1/realtime'), (e) => isAivaultError(e, 'AGENT_UNAUTHENTICATED'));
      await stranger.close();
    } finally {
      await agent.close();
    }
  });

  it('an open session ends once its grant expires (a lapsed `aivault run` lease) or its agent is revoked', async () => {
    const agent = async (name: string, ...grant: string[]) => {
      const { token: t } = JSON.parse(ok(await run(['agent', 'create', name, '--json']))) as { token: string };
      ok(await run(['grant', name, 'openai/realtime', ...grant]));
      const o = await open(`${base}/gw/openai/v1/realtime`, { authorization: `Bearer ${t}` });
      o.ws.send('still here');
      assert.equal((await nextMessages(o, 1))[0]?.data.toString(), 'still here');
      return o;
    };
    const within = <T,>(ms: number, p: Promise<T>) => Promise.race([p, new Promise<never>((_r, reject) => setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms).unref())]);
    const [expiring, revoked] = await Promise.all([agent('lapsing', '--expires', '5s'), agent('revoked-live')]);
    ok(await run(['agent', 'revoke', 'revoked-live']));
    const revokedAt = Date.now();
    assert.deepEqual(await within(6000, revoked.closed), { code: 1008, reason: 'no longer admitted: AGENT_REVOKED' });
    assert.ok(Date.now() - revokedAt < 5000, `closed ${Date.now() - revokedAt} ms after the revocation`);
    assert.deepEqual(await within(8000, expiring.closed), { code: 1008, reason: 'no longer admitted: GRANT_EXPIRED' });
  });

  it('each session is audited: the allow before anything was sent, then bytes each way; refusals with their code', async () => {
    await new Promise((r) => setTimeout(r, 300)); // outcomes are written with the next commit
    const records = JSON.parse(ok(await run(['audit', 'list', '--json', '--limit', '1000']))) as Array<{ action: string; decision: string; capability: string | null; reason: string | null; target: string | null; outcome: { status?: number; bytesIn?: number; bytesOut?: number } | null }>;
    const ws = records.filter((r) => r.action === 'websocket');
    const allowed = ws.filter((r) => r.decision === 'allow' && r.capability === 'openai/realtime');
    assert.ok(allowed.length >= 3);
    assert.equal(allowed[0]!.target, 'credential:openai');
    assert.equal(allowed[0]!.outcome?.status, 101);
    assert.ok((allowed[0]!.outcome?.bytesIn ?? 0) > 0 && (allowed[0]!.outcome?.bytesOut ?? 0) > 0, JSON.stringify(allowed[0]));
    const denied = new Set(ws.filter((r) => r.decision === 'deny').map((r) => r.reason));
    for (const code of ['WEBSOCKET_NOT_ALLOWED']) assert.ok(denied.has(code), `${code} in ${[...denied].join(', ')}`);
    ok(await run(['audit', 'verify']));
  });
});
