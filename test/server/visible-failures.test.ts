// Issue 15: an answer that fails after it started is seen to fail. A response cut at the
// size cap mid-stream, and one in a content-encoding aivault cannot decode (so cannot
// scrub), through a daemon process to an agent using raw HTTP and the CLI.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request, type Agent } from 'undici';
import { startAgentSide, type AgentSide } from '../helpers/agent-side.ts';
import { canary, type TempVault } from '../helpers/cli.ts';
import type { RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('failures after the answer started are visible', () => {
  let v: TempVault;
  let up: Upstream;
  let d: RunningDaemon;
  let token: string;
  let dispatcher: Agent;
  let side: AgentSide;
  const key = canary('VISIBLE');

  before(async () => {
    up = await startUpstream();
    // 256 KiB in 16 KiB chunks with no length announced, the first late: the answer streams
    // (an answer of no declared size is waited for whole only briefly) and the cap is passed mid-stream.
    up.handle('/v1/big', (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      let sent = 0;
      const tick = () => {
        if (sent >= 256 * 1024) return void res.end();
        sent += 16 * 1024;
        res.write('x'.repeat(16 * 1024));
        setTimeout(tick, 2);
      };
      res.flushHeaders();
      setTimeout(tick, 150);
    });
    up.handle('/v1/odd', (_req, res) => {
      res.setHeader('content-encoding', 'x-custom');
      res.end('zz');
    });
    side = await startAgentSide(async (owner) => {
      const ref = (await owner(['secrets', 'create', '--name', 'VISIBLE_KEY', '--value', key])).trim();
      await owner(['credential', 'create', 'vis', '--provider', 'vis', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-api-key', '--host', up.host, '--allow-http', '--allow-private-network']);
      await owner(['capability', 'create', 'vis/api', '--provider', 'vis', '--credential', 'vis', '--method', 'GET', '--path', '/v1']);
      await owner(['capability', 'policy', 'set', 'vis/api', '--max-response-body-bytes', String(64 * 1024)]);
      return ['vis/api'];
    }, { listen: true });
    ({ v, d, token, dispatcher } = side);
  });
  after(async () => {
    await side.close();
    await up.close();
  });
  const agentEnv = () => ({ AIVAULT_SOCKET: d.socket!, AIVAULT_AGENT_TOKEN: token });

  it('a response past the cap mid-stream is an error for a raw client, not a short 200', async () => {
    const res = await request('http://aivault/v1/invoke', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'vis/api', method: 'GET', path: '/v1/big' }), dispatcher });
    assert.equal(res.statusCode, 200, 'the head went out before the cap was passed');
    await assert.rejects(res.body.text(), 'reading the cut body fails');
  });

  it('an HTTP/1.0 client, whose answer ends where the connection does, sees the cut as a reset', async () => {
    // No chunked framing for it, so a plain close would read as the answer's end (an attacker found that).
    const body = JSON.stringify({ capability: 'vis/api', method: 'GET', path: '/v1/big' });
    const { port } = new URL(d.url!);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write(`POST /v1/invoke HTTP/1.0\r\nhost: aivault\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1', 0, Math.min(d.length, 64))));
    const ended = await new Promise<string>((resolve) => {
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      socket.once('end', () => resolve('a clean end'));
    });
    socket.destroy();
    assert.match(received, /^HTTP\/1\.1 200/, 'the head went out before the cap was passed');
    assert.equal(ended, 'ECONNRESET');
  });

  it('the CLI says so, with its code; --stream ends in an error frame', async () => {
    const plain = await v.cli(['invoke', 'vis/api', '--path', '/v1/big'], { env: agentEnv() });
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /RESPONSE_TOO_LARGE/);
    const streamed = await v.cli(['invoke', 'vis/api', '--path', '/v1/big', '--stream'], { env: agentEnv() });
    assert.notEqual(streamed.code, 0);
    const frames = streamed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; code?: string });
    assert.equal(frames[0]!.type, 'head');
    assert.deepEqual([frames.at(-1)!.type, frames.at(-1)!.code], ['error', 'RESPONSE_TOO_LARGE']);
    const records = JSON.parse((await v.cli(['audit', 'list', '--capability', 'vis/api', '--json'])).stdout) as Array<{ outcome: { error?: string } | null }>;
    assert.equal(records.at(-1)!.outcome?.error, 'RESPONSE_TOO_LARGE');
  });

  it('a content-encoding aivault cannot decode is an upstream error, not an unavailable daemon', async () => {
    const raw = await request('http://aivault/v1/invoke', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'vis/api', method: 'GET', path: '/v1/odd' }), dispatcher });
    await raw.body.dump();
    assert.deepEqual([raw.statusCode, raw.headers['x-aivault-error']], [502, 'UPSTREAM_ERROR']);
    const cli = await v.cli(['invoke', 'vis/api', '--path', '/v1/odd'], { env: agentEnv() });
    assert.equal(cli.code, 8, cli.stderr);
    assert.match(cli.stderr, /UPSTREAM_ERROR/);
    assert.doesNotMatch(cli.stderr, /DAEMON_UNAVAILABLE/);
  });
});
