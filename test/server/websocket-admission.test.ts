// A WebSocket session ends with the rules that admitted it: once the agent is revoked, its
// grant revoked or expired, or the capability deleted (by the owner's CLI, another process
// on the same vault, or through another replica), the daemon closes the session with 1008
// within seconds, and the upstream connection with it.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { dropSchema, freshSchema, schemaUrl } from '../helpers/postgres.ts';

interface StandIn {
  host: string;
  /** Upstream connections the daemon closed, counted. */
  closed(): number;
  close(): Promise<void>;
}

/** An upstream that sends a tick every 50 ms to each session, for as long as the session lasts. */
async function startTicker(): Promise<StandIn> {
  let closed = 0;
  const http: Server = createServer((_req, res) => res.end());
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => {
    let n = 0;
    const timer = setInterval(() => ws.send(`tick ${n++}`), 50);
    ws.on('close', () => {
      clearInterval(timer);
      closed += 1;
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(http.address() as AddressInfo).port}`,
    closed: () => closed,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

interface Session {
  ws: WebSocket;
  ticks: () => number;
  closed: Promise<{ code: number; reason: string; at: number }>;
}

function openSession(url: string, token: string): Promise<Session> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    let ticks = 0;
    ws.on('message', () => (ticks += 1));
    const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
    ws.once('open', () => resolve({ ws, ticks: () => ticks, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} ${String(res.headers['x-aivault-error'])}`)));
    ws.once('error', reject);
  });
}

/** A session opened once the agent has a free in-flight slot (tried every 100 ms, `tries` times), or undefined. */
async function openOnceSlotFree(url: string, token: string, tries: number): Promise<Session | undefined> {
  for (let i = 0; i < tries; i++) {
    const s = await openSession(url, token).catch((err: Error) => {
      if (!/TOO_MANY_IN_FLIGHT/.test(err.message)) throw err;
      return undefined;
    });
    if (s) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

const within = <T>(ms: number, p: Promise<T>, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);

/** The session was relaying, then was closed by the daemon with 1008 naming `code`, and the upstream side closed too. */
async function assertEnded(s: Session, code: string, since: number, up: StandIn, upstreamClosedBefore: number): Promise<void> {
  const closed = await within(8000, s.closed, `the session after ${code}`);
  assert.equal(closed.code, 1008);
  assert.equal(closed.reason, `no longer admitted: ${code}`);
  assert.ok(closed.at - since < 5000, `closed ${closed.at - since} ms after the change`);
  for (let i = 0; i < 100 && up.closed() <= upstreamClosedBefore; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(up.closed() > upstreamClosedBefore, 'the upstream connection was closed too');
}

async function setUp(owner: (args: string[]) => Promise<string>, host: string): Promise<void> {
  const ref = (await owner(['secrets', 'create', '--name', 'WS_TICK_KEY', '--value', canary('TICKKEY')])).trim();
  await owner(['credential', 'create', 'tick', '--provider', 'tick', '--secret-ref', ref, '--auth', 'query', '--param-name', 'token', '--host', host, '--allow-http', '--allow-private-network']);
  for (const id of ['tick/stream', 'tick/doomed']) await owner(['capability', 'create', id, '--provider', 'tick', '--credential', 'tick', '--method', 'GET', '--path', id === 'tick/stream' ? '/v1/stream' : '/v1/doomed', '--websocket']);
}

describe('WebSocket sessions end with the rules that admitted them (one daemon, the owner CLI beside it)', () => {
  let v: TempVault;
  let up: StandIn;
  let d: RunningDaemon;
  let base: string;
  const tokens: Record<string, string> = {};
  const owner = async (args: string[]) => {
    const r = await v.cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    v = await tempVault();
    up = await startTicker();
    await setUp(owner, up.host);
    for (const name of ['revoked', 'ungranted', 'expiring', 'orphan', 'bystander']) {
      tokens[name] = (JSON.parse(await owner(['agent', 'create', name, '--json'])) as { token: string }).token;
      await owner(['grant', name, name === 'orphan' ? 'tick/doomed' : 'tick/stream']);
    }
    d = await startDaemon(v, ['--socket', join(v.dir, 'w.sock'), '--listen', '127.0.0.1:0', '--max-in-flight-per-agent', '2']);
    base = d.url!.replace(/^http/, 'ws');
  });
  after(async () => {
    await d?.stop();
    await up.close();
    v.cleanup();
  });

  it('agent revoke, revoke-grant and capability delete each close the sessions they admitted, and only those', async () => {
    const bystander = await openSession(`${base}/gw/tick/v1/stream`, tokens.bystander!);
    for (const [agent, path, change, code] of [
      ['revoked', '/v1/stream', ['agent', 'revoke', 'revoked'], 'AGENT_REVOKED'],
      ['ungranted', '/v1/stream', ['revoke-grant', 'ungranted', 'tick/stream'], 'CAPABILITY_NOT_GRANTED'],
      ['orphan', '/v1/doomed', ['capability', 'delete', 'tick/doomed'], 'CAPABILITY_NOT_FOUND'],
    ] as const) {
      const s = await openSession(`${base}/gw/tick${path}`, tokens[agent]!);
      for (let i = 0; i < 100 && s.ticks() < 3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(s.ticks() >= 3, `${agent}: relaying`);
      const upstreamClosed = up.closed();
      await owner([...change]);
      await assertEnded(s, code, Date.now(), up, upstreamClosed);
    }
    assert.equal(bystander.ws.readyState, WebSocket.OPEN, 'a session whose admission holds stays open');
    const ticks = bystander.ticks();
    for (let i = 0; i < 100 && bystander.ticks() <= ticks; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(bystander.ticks() > ticks, 'and keeps relaying');
    bystander.ws.close();
    await bystander.closed;
    await new Promise((r) => setTimeout(r, 200));
  });

  it("an open session holds one of its agent's in-flight slots until it ends", async () => {
    const held = [await openSession(`${base}/gw/tick/v1/stream`, tokens.bystander!), await openSession(`${base}/gw/tick/v1/stream`, tokens.bystander!)];
    await assert.rejects(openSession(`${base}/gw/tick/v1/stream`, tokens.bystander!), /HTTP 429 TOO_MANY_IN_FLIGHT/);
    held[0]!.ws.close();
    await held[0]!.closed;
    // The daemon frees the slot when its side of the session has closed: soon, not at once.
    const again = await openOnceSlotFree(`${base}/gw/tick/v1/stream`, tokens.bystander!, 30);
    assert.ok(again, 'the slot was freed');
    for (const s of [again, held[1]!]) s.ws.close();
  });

  it('an upgrade whose client half-closes or goes away before the switch gives back its slot, closes its upstream and finishes its audit record', async () => {
    const { hostname, port } = new URL(d.url!);
    const upstreamClosed = up.closed();
    const seqBefore = Math.max(0, ...(JSON.parse(await owner(['audit', 'list', '--json'])) as Array<{ seq: number }>).map((r) => r.seq));
    const upgrade = `GET /gw/tick/v1/stream HTTP/1.1\r\nhost: aivault\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\nsec-websocket-version: 13\r\nauthorization: Bearer ${tokens.bystander!}\r\n\r\n`;
    // Three times its in-flight cap: each sends a valid upgrade, then only a FIN (or vanishes at once).
    const leavers = Array.from({ length: 6 }, (_, i) => {
      const socket = connect(Number(port), hostname);
      socket.on('error', () => {}).resume();
      socket.write(upgrade, () => (i % 3 === 2 ? socket.destroy() : socket.end()));
      return new Promise<void>((resolve) => socket.once('close', () => resolve()));
    });
    await within(10_000, Promise.all(leavers), 'the daemon closing every leaver');
    // The agent is not locked out: its slots came back.
    const s = await openOnceSlotFree(`${base}/gw/tick/v1/stream`, tokens.bystander!, 50);
    assert.ok(s, 'the in-flight slots were given back');
    s.ws.close();
    await s.closed;
    // Every upstream session opened for a leaver was closed, and its audit record finished (none left pending).
    type Record = { seq: number; action: string; outcome: { error?: string } | null };
    const audit = async () => (JSON.parse(await owner(['audit', 'list', '--json'])) as Record[]).filter((r) => r.seq > seqBefore && r.action === 'websocket');
    let records = await audit();
    for (let i = 0; i < 10 && records.some((r) => !r.outcome); i++) {
      await new Promise((r) => setTimeout(r, 300));
      records = await audit();
    }
    assert.deepEqual(records.filter((r) => !r.outcome), [], 'no audit record left pending');
    // How many were admitted before the daemon saw them leave depends on timing; each that was says so.
    const gone = records.filter((r) => r.outcome?.error === 'CLIENT_GONE').length;
    assert.ok(gone >= 1, `the half-closed upgrades' records say CLIENT_GONE: ${gone}`);
    for (let i = 0; i < 100 && up.closed() < upstreamClosed + gone + 1; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(up.closed() >= upstreamClosed + gone + 1, `upstream sessions closed: ${up.closed() - upstreamClosed} of ${gone + 1}`);
  });

  it('a session ends when its grant expires', async () => {
    await owner(['grant', 'expiring', 'tick/stream', '--expires', '6s']);
    const s = await openSession(`${base}/gw/tick/v1/stream`, tokens.expiring!);
    const expires = (JSON.parse(await owner(['grant', 'list', 'expiring', '--json'])) as Array<{ expiresAt: string }>)[0]!.expiresAt;
    const closed = await within(12_000, s.closed, 'the expiring session');
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'no longer admitted: GRANT_EXPIRED');
    assert.ok(closed.at >= Date.parse(expires), 'not before the expiry');
    assert.ok(closed.at - Date.parse(expires) < 4000, `${closed.at - Date.parse(expires)} ms after the expiry`);
  });
});

describe('WebSocket sessions end on every replica (two daemons on one PostgreSQL vault)', () => {
  const schema = freshSchema('wsadm');
  let c: Cluster;
  let up: StandIn;
  let token: string;

  before(async () => {
    up = await startTicker();
    c = await startCluster(schemaUrl(schema), 2);
    await setUp(c.owner, up.host);
    token = (JSON.parse(await c.owner(['agent', 'create', 'roamer', '--json'])) as { token: string }).token;
    await c.owner(['grant', 'roamer', 'tick/stream']);
  });
  after(async () => {
    await c?.stop();
    await up.close();
    await dropSchema(schema);
  });

  it("a revocation made in another process closes the agent's sessions on both replicas", async () => {
    const sessions = await Promise.all(c.replicas.map((r) => openSession(`${r.url!.replace(/^http/, 'ws')}/gw/tick/v1/stream`, token)));
    const upstreamClosed = up.closed();
    await c.owner(['agent', 'revoke', 'roamer']);
    const since = Date.now();
    for (const s of sessions) await assertEnded(s, 'AGENT_REVOKED', since, up, upstreamClosed);
    for (let i = 0; i < 100 && up.closed() < upstreamClosed + 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(up.closed(), upstreamClosed + 2);
  });
});
