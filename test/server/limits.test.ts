// What anyone who can connect can cost the daemon: no body is read before its sender is
// known, every phase of a connection has a deadline, and unauthenticated requests and each
// agent's open requests are capped. Raw sockets, so each byte's timing is the test's.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signRequest } from '../../src/policy/request-signature.ts';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

interface Raw {
  socket: Socket;
  /** The status line and headers of the first answer, and when they came (ms after opening). */
  head: Promise<{ status: number; headers: Record<string, string>; ms: number }>;
  /** When the daemon closed the connection (ms after opening). */
  closed: Promise<number>;
}

/** A TCP connection to the daemon that sends `head` (and nothing else unless the test writes more). */
function raw(d: RunningDaemon, head: string): Raw {
  const { hostname, port } = new URL(d.url!);
  const socket = connect(Number(port), hostname);
  const opened = Date.now();
  let text = '';
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - opened)));
  const answer = new Promise<{ status: number; headers: Record<string, string>; ms: number }>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [status, ...lines] = text.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(status!.split(' ')[1]), headers, ms: Date.now() - opened });
    });
    void closed.then(() => reject(new Error(`closed without an answer: ${JSON.stringify(text.slice(0, 200))}`)));
  });
  answer.catch(() => {});
  if (head) socket.write(head);
  return { socket, head: answer, closed };
}

const post = (path: string, headers: Record<string, string | number>) =>
  `POST ${path} HTTP/1.1\r\nhost: aivault\r\ncontent-type: application/json\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

/** The daemon's resident memory, in MiB. */
function rssMiB(d: RunningDaemon): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.process.pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

const within = (ms: number, p: Promise<unknown>, what: string) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref())]);

describe('what anyone who can connect can cost the daemon', () => {
  let v: TempVault;
  let up: Upstream;
  let token: string;
  let other: string;
  let signerId: string;
  let revokedSignerId: string;
  let ownerId: string;
  const key = generateKeyPairSync('ed25519');
  const revokedKey = generateKeyPairSync('ed25519');
  const invokeBody = JSON.stringify({ capability: 'api/data', method: 'POST', path: '/v1/x', body: 'hi' });

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    const ref = (await v.cli(['secrets', 'create', '--name', 'LIMITS_KEY', '--value', 'limits-key-0123456789'])).stdout.trim();
    for (const args of [
      ['credential', 'create', 'api', '--provider', 'api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', up.host, '--allow-http', '--allow-private-network'],
      ['capability', 'create', 'api/data', '--provider', 'api', '--credential', 'api', '--method', 'POST', '--path', '/v1'],
    ]) assert.equal((await v.cli(args)).code, 0);
    token = (JSON.parse((await v.cli(['agent', 'create', 'bot', '--json'])).stdout) as { token: string }).token;
    other = (JSON.parse((await v.cli(['agent', 'create', 'other', '--json'])).stdout) as { token: string }).token;
    const keyFile = join(v.dir, '..', 'signer.pub');
    writeFileSync(keyFile, key.publicKey.export({ type: 'spki', format: 'pem' }));
    signerId = (JSON.parse((await v.cli(['agent', 'create', 'signer', '--public-key', keyFile, '--json'])).stdout) as { id: string }).id;
    for (const a of ['bot', 'other', 'signer']) assert.equal((await v.cli(['grant', a, 'api/data'])).code, 0);
    const revokedFile = join(v.dir, '..', 'revoked.pub');
    writeFileSync(revokedFile, revokedKey.publicKey.export({ type: 'spki', format: 'pem' }));
    revokedSignerId = (JSON.parse((await v.cli(['agent', 'create', 'gone', '--public-key', revokedFile, '--json'])).stdout) as { id: string }).id;
    assert.equal((await v.cli(['agent', 'revoke', 'gone'])).code, 0);
    ownerId = (JSON.parse((await v.cli(['owner', 'list', '--json'])).stdout) as Array<{ id: string }>)[0]!.id;
  });
  after(async () => {
    await up.close();
    v.cleanup();
  });

  /** A legitimate agent's invoke, on a connection of its own. */
  const legit = async (d: RunningDaemon, t = token) => {
    const r = raw(d, post('/v1/invoke', { authorization: `Bearer ${t}`, 'content-length': Buffer.byteLength(invokeBody) }) + invokeBody);
    const head = await within(5000, r.head, 'a legitimate invoke') as Awaited<Raw['head']>;
    r.socket.destroy();
    return head.status === 200 ? 'OK' : head.headers['x-aivault-error'];
  };

  describe('deadlines and flooding (headers 1 s, body 1 s, idle 1 s)', () => {
    let d: RunningDaemon;
    before(async () => {
      d = await startDaemon(v, ['--socket', join(v.dir, 'a.sock'), '--listen', '127.0.0.1:0', '--headers-timeout', '1', '--body-timeout', '1', '--idle-timeout', '1']);
    });
    after(() => d.stop());

    it('a request whose token is wrong or missing is refused from its headers: 401 before any body byte is sent, and the connection closed', async () => {
      for (const [path, auth] of [
        ['/v1/invoke', { authorization: 'Bearer avt_wrong' }],
        ['/v1/invoke', {}],
        ['/v1/flows/run', {}],
        ['/gw/api/v1/x', { 'x-api-key': 'avt_wrong' }],
        ['/mcp', { authorization: 'Bearer avt_wrong' }],
        ['/v1/invoke', { 'x-aivault-signer': randomUUID(), 'x-aivault-timestamp': Date.now(), 'x-aivault-nonce': 'n'.repeat(20), 'x-aivault-signature': 'AAAA' }],
        ['/v1/owner/rpc', { 'x-aivault-signer': randomUUID(), 'x-aivault-timestamp': Date.now(), 'x-aivault-nonce': 'n'.repeat(20), 'x-aivault-signature': 'AAAA' }],
      ] as const) {
        const r = raw(d, post(path, { ...auth, 'content-length': 16 * 1024 * 1024 }));
        const head = (await within(3000, r.head, path)) as Awaited<Raw['head']>;
        assert.ok([401, 403].includes(head.status), `${path}: ${head.status}`);
        assert.ok(['AGENT_UNAUTHENTICATED', 'SIGNATURE_INVALID', 'OWNER_ROUTE'].includes(head.headers['x-aivault-error']!), path);
        assert.equal(head.headers.connection, 'close', path);
        await within(3000, r.closed, `${path}: the close`);
      }
      // A client that waits to be told to send its body is told only once it is known.
      const waiting = raw(d, post('/v1/invoke', { authorization: 'Bearer avt_wrong', expect: '100-continue', 'content-length': 1000 }));
      assert.equal(((await within(3000, waiting.head, 'expect')) as Awaited<Raw['head']>).status, 401);
      const known = raw(d, post('/v1/invoke', { authorization: `Bearer ${token}`, expect: '100-continue', 'content-length': 1000 }));
      assert.equal(((await within(3000, known.head, 'expect')) as Awaited<Raw['head']>).status, 100);
      known.socket.destroy();
      // A signed request whose timestamp is stale is refused before its body too.
      const stale = raw(d, post('/v1/invoke', { 'x-aivault-signer': signerId, 'x-aivault-timestamp': Date.now() - 3_600_000, 'x-aivault-nonce': 'n'.repeat(20), 'x-aivault-signature': 'AAAA', 'content-length': 1000 }));
      assert.equal(((await within(3000, stale.head, 'stale')) as Awaited<Raw['head']>).headers['x-aivault-error'], 'CLOCK_SKEW');
    });

    it('30 unauthenticated connections each sending 16 MiB leave memory bounded and a legitimate agent served', async () => {
      assert.equal(await legit(d), 'OK');
      const baseline = rssMiB(d);
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(d))), 20);
      const body = Buffer.alloc(16 * 1024 * 1024, 0x61);
      const flood = Array.from({ length: 30 }, (_, i) => {
        const r = raw(d, post(i % 2 ? '/v1/invoke' : '/gw/api/v1/x', { ...(i % 3 ? { authorization: 'Bearer avt_nope' } : {}), 'content-length': body.length }));
        r.socket.write(body);
        return r;
      });
      try {
        assert.equal(await legit(d), 'OK', 'served during the flood');
        await within(20_000, Promise.all(flood.map((r) => Promise.race([r.head.catch(() => {}), r.closed]))), 'every flooding connection answered');
        assert.equal(await legit(d), 'OK', 'served after the flood');
      } finally {
        clearInterval(sampler);
        for (const r of flood) r.socket.destroy();
      }
      // Buffering the bodies (as before) costs 30 x 16 MiB = 480 MiB; refusing from the headers, next to nothing.
      console.log(`# daemon RSS ${Math.round(baseline)} MiB before the flood, ${Math.round(peak)} MiB at its peak`);
      assert.ok(peak - baseline < 64, `RSS grew ${Math.round(peak - baseline)} MiB (from ${Math.round(baseline)} MiB)`);
    });

    it('a body trickled a byte at a time is cut at the body deadline: 408 REQUEST_TIMEOUT, connection closed', async () => {
      const r = raw(d, post('/v1/invoke', { authorization: `Bearer ${token}`, 'content-length': 1000 }));
      const drip = setInterval(() => r.socket.write('{'), 100);
      try {
        const head = (await within(6000, r.head, 'the slow body')) as Awaited<Raw['head']>;
        assert.equal(head.status, 408);
        assert.equal(head.headers['x-aivault-error'], 'REQUEST_TIMEOUT');
        assert.ok(head.ms >= 900, `cut after ${head.ms} ms, before the deadline`);
        await within(3000, r.closed, 'the close');
      } finally {
        clearInterval(drip);
        r.socket.destroy();
      }
    });

    it('headers trickled, or none at all, are cut at the headers deadline; an idle kept-alive connection at the idle one', async () => {
      const silent = raw(d, '');
      const slow = raw(d, 'POST /v1/invoke HTTP/1.1\r\n');
      const drip = setInterval(() => slow.socket.write('x-a: b\r\n'), 100);
      try {
        assert.ok((await within(6000, silent.closed, 'the silent connection')) as number < 6000);
        assert.ok((await within(6000, slow.closed, 'the slow headers')) as number < 6000);
      } finally {
        clearInterval(drip);
      }
      const idle = raw(d, 'GET /v1/health HTTP/1.1\r\nhost: aivault\r\n\r\n');
      assert.equal(((await idle.head) as Awaited<Raw['head']>).status, 200);
      const closedAfter = (await within(4000, idle.closed, 'the idle connection')) as number;
      assert.ok(closedAfter >= 900, `closed after ${closedAfter} ms`);
    });
  });

  describe('caps (3 unverified signed bodies at once, 2 in flight per agent, 1 MiB of bodies buffered)', () => {
    let d: RunningDaemon;
    before(async () => {
      d = await startDaemon(v, ['--socket', join(v.dir, 'b.sock'), '--listen', '127.0.0.1:0', '--body-timeout', '5', '--max-unauthenticated', '3', '--max-in-flight-per-agent', '2', '--max-buffered-body-bytes', String(1024 * 1024)]);
    });
    after(() => d.stop());

    it("an agent's third open request gets 429 TOO_MANY_IN_FLIGHT with Retry-After; other agents are served; its slots come back", async () => {
      const held = [0, 1].map(() => raw(d, post('/v1/invoke', { authorization: `Bearer ${token}`, 'content-length': 100 })));
      await new Promise((r) => setTimeout(r, 300));
      const third = raw(d, post('/v1/invoke', { authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(invokeBody) }) + invokeBody);
      const head = (await within(3000, third.head, 'the third')) as Awaited<Raw['head']>;
      assert.equal(head.status, 429);
      assert.equal(head.headers['x-aivault-error'], 'TOO_MANY_IN_FLIGHT');
      assert.equal(head.headers['retry-after'], '1');
      assert.equal(await legit(d, other), 'OK');
      for (const r of held) r.socket.destroy();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await legit(d), 'OK');
    });

    it("a flood of trickled signed requests naming the owner's id takes only that id's share of the unverified slots: token agents and other signers are served; past the share, 503 DAEMON_BUSY", async () => {
      // Anyone can name the owner's id with a current timestamp and a fresh nonce; the signature is garbage.
      const forged = () => post('/v1/owner/rpc', { 'x-aivault-signer': ownerId, 'x-aivault-timestamp': Date.now(), 'x-aivault-nonce': randomUUID(), 'x-aivault-signature': 'AAAA', 'content-length': 1000 });
      const flood = Array.from({ length: 5 }, () => raw(d, forged()));
      const drip = setInterval(() => flood.forEach((r) => r.socket.write('{')), 100);
      try {
        await new Promise((r) => setTimeout(r, 300));
        // A token's request is authenticated from its headers: it needs no unverified slot.
        assert.equal(await legit(d), 'OK', 'a token agent is served during the flood');
        // Another signer still has a slot: the flood took only the owner id's share.
        const body = Buffer.from(invokeBody);
        const headers = signRequest({ method: 'POST', target: '/v1/invoke', headers: [['host', 'aivault'], ['content-type', 'application/json'], ['content-length', String(body.length)]], body }, signerId, key.privateKey);
        const signed = raw(d, `POST /v1/invoke HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${invokeBody}`);
        assert.equal(((await within(5000, signed.head, 'the signed invoke')) as Awaited<Raw['head']>).status, 200, 'another signer is served during the flood');
        signed.socket.destroy();
        const busy = (await Promise.all(flood.map((r) => Promise.race([r.head, new Promise((resolve) => setTimeout(resolve, 500, undefined))])))).filter(Boolean) as Array<Awaited<Raw['head']>>;
        assert.equal(busy.length, 3, 'past the per-signer share the flood is refused at once');
        for (const head of busy) {
          assert.equal(head.status, 503);
          assert.equal(head.headers['x-aivault-error'], 'DAEMON_BUSY');
          assert.equal(head.headers['retry-after'], '1');
        }
      } finally {
        clearInterval(drip);
        for (const r of flood) r.socket.destroy();
      }
    });

    it("a revoked signer is refused from its headers: 401 before any of its body is read", async () => {
      const headers = signRequest({ method: 'POST', target: '/v1/invoke', headers: [['content-type', 'application/json']], body: Buffer.from('{}') }, revokedSignerId, revokedKey.privateKey);
      const r = raw(d, `POST /v1/invoke HTTP/1.1\r\nhost: aivault\r\ncontent-length: 1000\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      const head = (await within(2000, r.head, 'the revoked signer')) as Awaited<Raw['head']>;
      assert.equal(head.status, 401);
      assert.equal(head.headers['x-aivault-error'], 'SIGNATURE_INVALID');
      r.socket.destroy();
    });

    it('request bodies buffered at once share a daemon-wide budget: past it, 503 DAEMON_BUSY (from Content-Length, or as a chunked body arrives); the bytes come back', async () => {
      const big = 700 * 1024;
      const holder = raw(d, post('/v1/invoke', { authorization: `Bearer ${token}`, 'content-length': big }) + '{');
      await new Promise((r) => setTimeout(r, 300));
      try {
        const announced = raw(d, post('/v1/invoke', { authorization: `Bearer ${other}`, 'content-length': big }));
        const chunked = raw(d, post('/v1/invoke', { authorization: `Bearer ${other}`, 'transfer-encoding': 'chunked' }) + `${big.toString(16)}\r\n${'a'.repeat(big)}\r\n`);
        for (const [what, r] of [['announced', announced], ['chunked', chunked]] as const) {
          const head = (await within(3000, r.head, what)) as Awaited<Raw['head']>;
          assert.equal(head.status, 503, what);
          assert.equal(head.headers['x-aivault-error'], 'DAEMON_BUSY', what);
          assert.equal(head.headers['retry-after'], '1', what);
          r.socket.destroy();
        }
      } finally {
        holder.socket.destroy();
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await legit(d, other), 'OK');
    });
  });
});
