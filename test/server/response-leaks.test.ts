// Issue 14's classes, end to end: a daemon process, an agent holding only its token (raw
// HTTP, the CLI and the SDK), and an upstream on loopback that reflects what it receives.
// Each test is one class of leak the first attacker found; docs/threat-model.md lists them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { Vault } from '../../src/vault/vault.ts';
import { ENCODINGS, leak } from '../broker/scrub-encodings.ts';
import { assertNoLeak, recorder, tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

/** Mixed case, and characters percent, JSON, HTML and form encoders all treat specially. */
const key = `Sk-${randomBytes(12).toString('hex')}+%&!Q`;
const clientSecret = `cs-${randomBytes(12).toString('hex')}`;
/** A key that markdown's own escaping could rebuild: a table cell's `|` is written `\|`. */
const pipeKey = `pk-${randomBytes(10).toString('hex')}\\|tail`;
/** The content-encodings an upstream may answer in. */
const COMPRESS = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Reflector {
  host: string;
  /** Ends the response the side-channel route holds open. */
  release(): void;
  close(): Promise<void>;
}

/** The upstream: every route reflects the credential it received, in a different way. */
async function startReflector(): Promise<Reflector> {
  let release = () => {};
  const received = (req: IncomingMessage) => String(req.headers.authorization ?? '').replace(/^Bearer /, '');
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, body: Buffer) => void> = {
    // Echoes the agent's body at once, then holds the response open until the test is done looking.
    '/v1/echo': (_req, res, body) => {
      res.setHeader('content-type', 'text/plain');
      res.write(body);
      release = () => res.end();
    },
    '/v1/encoded': (req, res) => {
      const q = new URL(req.url!, 'http://x').searchParams;
      res.setHeader('content-type', 'text/plain');
      // Compressed on request, after `pad` bytes of filler (to decode past what is held at once).
      const zip = q.get('zip') as keyof typeof COMPRESS | null;
      const encoded = '.'.repeat(Number(q.get('pad') ?? 0)) + ENCODINGS[q.get('as')!]!(`you sent ${received(req)} to us`, 11);
      if (zip) res.setHeader('content-encoding', zip);
      res.end(zip ? COMPRESS[zip](encoded) : encoded);
    },
    '/v1/headers': (req, res) => {
      const k = received(req);
      res.setHeader('x-echo-split', [k.slice(0, 12), k.slice(12)]);
      res.setHeader(`x-${k.toLowerCase()}`, 'present');
      res.setHeader('x-plain', 'kept');
      res.end('{}');
    },
    '/v1/sse': (req, res) => {
      const k = received(req);
      res.setHeader('content-type', 'text/event-stream');
      res.write(`data: ${k.slice(0, 10)}\n\n`);
      setTimeout(() => res.end(`data: ${k.slice(10)}\n\ndata: [DONE]\n\n`), 5);
    },
    // The key one byte every 4 ms, or in ten server-sent events 10 ms apart: slower than any
    // single pause the scrubber waits out, steadier than its idle time.
    '/v1/drip': (req, res) => {
      const k = received(req);
      let i = 0;
      const tick = () => (i < k.length ? (res.write(k[i++]!), setTimeout(tick, 4)) : res.end(' end'));
      tick();
    },
    '/v1/sse-many': (req, res) => {
      const k = received(req);
      res.setHeader('content-type', 'text/event-stream');
      const size = Math.ceil(k.length / 10);
      let i = 0;
      const tick = () => (i * size < k.length ? (res.write(`data: ${k.slice(i * size, ++i * size)}\n\n`), setTimeout(tick, 10)) : res.end('data: [DONE]\n\n'));
      tick();
    },
    // An encoding nobody can decode, named with the key: our refusal must not repeat it.
    '/v1/odd-encoding': (req, res) => {
      res.setHeader('content-encoding', `x-${received(req).replace(/[^\x21-\x7e]/g, '')}`);
      res.end('zz');
    },
    '/v1/json': (req, res) => {
      const k = received(req);
      res.setHeader('content-type', 'application/json');
      // Some characters as \u escapes, as Go and others write them.
      res.end(`{"note":"x","value":"${[...k].map((c, i) => (i % 3 === 0 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)).join('')}"}`);
    },
    // The key with its `\|` turned into `|`: not the key, until a table escapes the pipe.
    '/v1/table': (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify([{ name: 'row', value: received(req).replace('\\|', '|') }]));
    },
    '/v1/impersonate': (_req, res) => {
      res.setHeader('x-aivault-error', 'CAPABILITY_NOT_GRANTED');
      res.setHeader('x-aivault-credential', 'someone-else');
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    },
    '/flow/shape': (req, res) => {
      const k = received(req);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ [k]: 1, nested: { [encodeURIComponent(k)]: 'x' } }));
    },
    '/flow/acquire': (_req, res) => {
      const token = acquired;
      res.setHeader('content-type', `application/json; charset=${token.slice(0, 20)}`);
      res.end(JSON.stringify({ access_token: token, token_type: Buffer.from(token).toString('hex'), scope: token.slice(0, -1), [token.slice(1)]: true, expires_in: 3600 }));
    },
    '/oauth/token': (req, res) => {
      // A token endpoint that reflects what it received in its error.
      const basic = Buffer.from(String(req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
      res.statusCode = 400;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: decodeURIComponent(basic.split(':')[1] ?? ''), error_description: basic }));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const route = routes[new URL(req.url!, 'http://x').pathname];
      if (route) route(req, res, Buffer.concat(chunks));
      else res.writeHead(404).end();
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    const k = received(req);
    // The key split over two messages, then once more in hex.
    ws.send(`first ${k.slice(0, 9)}`);
    ws.send(`${k.slice(9)} second`);
    ws.send(`hex ${Buffer.from(k).toString('hex')}`);
    ws.send('done');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    release: () => release(),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let acquired = '';

describe('response leaks (issue 14), through the daemon', () => {
  let v: TempVault;
  let up: Reflector;
  let daemon: RunningDaemon;
  let token: string;
  const seen: string[] = [];
  const { run, outputs } = recorder(() => v);
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  /** The CLI as the agent: its token and the daemon's address, nothing else. */
  const asAgent = (args: string[]) => run(args, { env: { AIVAULT_AGENT_TOKEN: token, AIVAULT_URL: daemon.url!, AIVAULT_DIR: join(v.dir, 'none') } });
  const invoke = async (body: object) => {
    const res = await request(`${daemon.url}/v1/invoke`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'reflect/api', ...body }) });
    const text = await res.body.text();
    seen.push(text, JSON.stringify(res.headers));
    return { status: res.statusCode, headers: res.headers, text };
  };

  before(async () => {
    v = await tempVault();
    up = await startReflector();
    const ref = ok(await run(['secrets', 'create', '--name', 'REFLECT_KEY', '--value', key])).trim();
    ok(await run(['credential', 'create', 'reflect', '--provider', 'reflect', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network']));
    ok(await run(['capability', 'create', 'reflect/api', '--provider', 'reflect', '--credential', 'reflect', '--method', 'GET', '--method', 'POST', '--path', '/v1', '--websocket']));
    const pipeRef = ok(await run(['secrets', 'create', '--name', 'PIPE_KEY', '--value', pipeKey])).trim();
    ok(await run(['credential', 'create', 'pipe', '--provider', 'pipe', '--secret-ref', pipeRef, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network']));
    ok(await run(['capability', 'create', 'pipe/api', '--provider', 'pipe', '--credential', 'pipe', '--method', 'GET', '--path', '/v1']));
    const id = ok(await run(['secrets', 'create', '--name', 'REFLECT_CLIENT_ID', '--value', 'client-0123456789'])).trim();
    const cs = ok(await run(['secrets', 'create', '--name', 'REFLECT_CLIENT_SECRET', '--value', clientSecret])).trim();
    ok(await run(['credential', 'create', 'reflect-oauth', '--provider', 'reflectoauth', '--auth', 'o_auth2', '--grant-type', 'client_credentials', '--token-endpoint', `http://${up.host}/oauth/token`, '--secret-ref', `client_id=${id}`, '--secret-ref', `client_secret=${cs}`, '--host', up.host, '--allow-http', '--allow-private-network']));
    ok(await run(['capability', 'create', 'reflectoauth/api', '--provider', 'reflectoauth', '--credential', 'reflect-oauth', '--method', 'GET', '--path', '/v1']));
    ok(await run(['flow', 'create', 'reflect/shape', '--mode', 'send_secret', '--target', `http://${up.host}/flow/shape`, '--method', 'POST', '--credential', 'reflect', '--visibility', 'shape_only', '--allow-http', '--allow-private-network']));
    ok(await run(['flow', 'create', 'reflect/acquire', '--mode', 'acquire_secret', '--target', `http://${up.host}/flow/acquire`, '--method', 'POST', '--kind', 'oauth_token_response.access_token', '--store-alias', 'ACQUIRED_TOKEN', '--allow-http', '--allow-private-network']));
    token = (JSON.parse(ok(await run(['agent', 'create', 'prober', '--json']))) as { token: string }).token;
    for (const cap of ['reflect/api', 'pipe/api', 'reflectoauth/api', 'reflect/shape', 'reflect/acquire']) ok(await run(['grant', 'prober', cap]));
    daemon = await startDaemon(v, ['--listen', '127.0.0.1:0']);
  });
  after(async () => {
    await daemon?.stop();
    await up.close();
    for (const s of [...seen, ...outputs, daemon?.log() ?? '']) {
      for (const secret of [key, clientSecret, pipeKey, ...(acquired ? [acquired] : [])]) {
        assertNoLeak(s, secret, 'what the agent saw');
        assert.equal(leak(s, secret), undefined, 'no decoded view of what the agent saw holds a secret');
      }
    }
    v.cleanup();
  });

  it('class 1, no oracle: an echoed partial guess of the key comes back exactly like a wrong guess, chunk for chunk', async () => {
    /** What the agent has received of its echo by the time the upstream has long sent it all. */
    const probe = async (guess: string) => {
      const res = await request(`${daemon.url}/v1/invoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ capability: 'reflect/api', method: 'POST', path: '/v1/echo', body: `padding ${guess}` }),
      });
      const got: Buffer[] = [];
      res.body.on('data', (c: Buffer) => got.push(c));
      await wait(300); // the upstream wrote everything at once and holds the response open
      const before = Buffer.concat(got).toString();
      up.release();
      await new Promise((r) => res.body.on('end', r));
      return { before, all: Buffer.concat(got).toString() };
    };
    const right = await probe(key.slice(0, 12));
    const wrong = await probe(`${key.slice(0, 3)}zzzzzzzzz`);
    assert.equal(right.before, `padding ${key.slice(0, 12)}`, 'a partial match is not held back beyond the fixed hold time');
    assert.equal(wrong.before, `padding ${key.slice(0, 3)}zzzzzzzzz`);
    assert.deepEqual([right.all.length, wrong.all.length], [right.before.length, wrong.before.length]);
  });

  it('class 2, encodings: every listed encoding of the key in a body, through /v1/invoke', async () => {
    for (const as of Object.keys(ENCODINGS)) {
      const r = await invoke({ path: '/v1/encoded', query: [['as', as]] });
      assert.equal(r.status, 200);
      assert.equal(leak(r.text, key), undefined, `${as}: ${r.text}`);
      assert.match(r.text, /\[REDACTED\]/, as);
    }
    // Compressed, small (decoded whole) and past what is held at once (decoded as a stream).
    const zips = Object.keys(COMPRESS);
    for (const [i, as] of Object.keys(ENCODINGS).entries()) {
      const zip = zips[i % zips.length]!;
      const pad = i % 2 === 0 ? 0 : 600 * 1024;
      const r = await invoke({ path: '/v1/encoded', query: [['as', as], ['zip', zip], ['pad', String(pad)]] });
      assert.equal(r.status, 200);
      assert.equal(leak(r.text, key), undefined, `${as} in ${zip}, ${pad} bytes in: ${r.text.slice(pad)}`);
      assert.match(r.text.slice(pad), /\[REDACTED\]/, `${as} in ${zip}`);
    }
  });

  it('class 2, boundaries: split over two values of a repeated header, in a lower-cased header name, over two SSE events, over two WebSocket messages', async () => {
    const h = await invoke({ path: '/v1/headers' });
    assert.deepEqual(h.headers['x-echo-split'], ['[REDACTED]', '[REDACTED]']);
    assert.equal(Object.keys(h.headers).some((n) => n.includes(key.toLowerCase().slice(3, 15))), false, 'a header whose name held the key is dropped');
    assert.equal(h.headers['x-plain'], 'kept');

    // Slow, steady reflections: the key's first bytes must not leave before its last arrive.
    for (const path of ['/v1/drip', '/v1/sse-many']) {
      const r = await invoke({ path });
      assert.equal(leak(r.text, key), undefined, `${path}: ${r.text}`);
      assert.match(r.text, /\[REDACTED\]/, path);
      const rendered = ok(await asAgent(['json', 'reflect/api', '--path', path]));
      assert.equal(leak(rendered, key), undefined, `${path} (json): ${rendered}`);
    }

    const sse = await invoke({ path: '/v1/sse' });
    assert.equal(leak(sse.text, key), undefined, sse.text);
    assert.match(sse.text, /\[REDACTED\]/);
    assert.match(sse.text, /data: \[DONE\]/);

    // Through the CLI's --stream too: NDJSON frames as the answer arrives.
    const frames = ok(await asAgent(['invoke', 'reflect/api', '--path', '/v1/sse', '--stream']));
    assert.equal(leak(frames.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { text?: string }).text ?? '').join(''), key), undefined);

    const ws = new WebSocket(`${daemon.url!.replace(/^http/, 'ws')}/gw/reflect/v1/stream`, { headers: { authorization: `Bearer ${token}` } });
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      setTimeout(() => reject(new Error(`only ${messages.length} messages arrived: ${JSON.stringify(messages)}`)), 10_000).unref();
      ws.on('message', (d) => {
        messages.push(String(d));
        if (String(d) === 'done') resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    seen.push(...messages);
    assert.equal(messages.length, 4, 'every message arrives, each whole');
    assert.deepEqual(messages.slice(0, 2), ['first [REDACTED]', '[REDACTED] second']);
    assert.equal(messages[2], 'hex [REDACTED]');
  });

  it('class 3, our own words: a token endpoint that reflects the client secret in its error', async () => {
    const r = await request(`${daemon.url}/v1/invoke`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'reflectoauth/api', path: '/v1/x' }) });
    const text = await r.body.text();
    seen.push(text);
    assert.equal(r.headers['x-aivault-error'], 'OAUTH_REFRESH_FAILED');
    assert.match(text, /unrecognised error code/);
    assert.equal(text.includes(clientSecret), false);
    const odd = await invoke({ path: '/v1/odd-encoding' });
    assert.equal(odd.headers['x-aivault-error'], 'UPSTREAM_ERROR');
    assert.equal(odd.text.includes(key.slice(0, 12)), false, 'the upstream\'s header value is not repeated in our error');
  });

  it('class 3, flows: shape_only keys are scrubbed; an acquire shape echoes nothing the upstream chose', async () => {
    const shape = JSON.parse(ok(await asAgent(['flow', 'run', 'reflect/shape', '--json']))) as { responseShape: Record<string, unknown> };
    assert.equal(JSON.stringify(shape).includes('[REDACTED]'), true);
    acquired = `tok-${randomBytes(16).toString('hex')}`;
    const got = JSON.parse(ok(await asAgent(['flow', 'run', 'reflect/acquire', '--json']))) as { responseShape: Record<string, unknown>; contentType: string };
    assert.deepEqual(got.responseShape, { access_token: 'string', token_type: 'string', scope: 'string', expires_in: 3600, '(other fields)': 1 });
    assert.equal(got.contentType, 'application/json');
    for (const form of [acquired.slice(0, -1), acquired.slice(1), Buffer.from(acquired).toString('hex')]) assert.equal(JSON.stringify(got).includes(form), false);
  });

  it('class 3, re-rendering: `aivault json` and `aivault markdown` print no key decoded from JSON escapes', async () => {
    const json = ok(await asAgent(['json', 'reflect/api', '--path', '/v1/json']));
    assert.equal((JSON.parse(json) as { response: { json: { value: string } } }).response.json.value, '[REDACTED]');
    const md = ok(await asAgent(['markdown', 'reflect/api', '--path', '/v1/json']));
    assert.match(md, /\[REDACTED\]/);
    // The body holds no key; the table markdown makes of it would, and is scrubbed as it is rendered.
    const raw = ok(await asAgent(['invoke', 'pipe/api', '--path', '/v1/table']));
    assert.equal(raw.includes(pipeKey.replace('\\|', '|')), true, 'the body itself passes as it is');
    const table = ok(await asAgent(['markdown', 'pipe/api', '--path', '/v1/table']));
    assert.match(table, /\| row \| \[REDACTED\] \|/);
    seen.push(table);
  });

  it("class 4, our signals: an upstream's x-aivault-* headers never reach the agent, so its answer is not a refusal", async () => {
    const r = await invoke({ path: '/v1/impersonate' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-aivault-error'], undefined);
    assert.equal(r.headers['x-aivault-credential'], 'reflect', "the daemon's own header, not the upstream's");
    const cli = await asAgent(['invoke', 'reflect/api', '--path', '/v1/impersonate']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout.trim(), '{"ok":true}');
    const sdk = createAgentClient({ url: daemon.url!, token });
    try {
      const res = await sdk.invoke({ capability: 'reflect/api', method: 'GET', path: '/v1/impersonate' });
      assert.equal(res.status, 200);
      await res.text();
    } finally {
      await sdk.close();
    }
  });

  it('class 5, short secrets: refused unless the owner accepts them; a credential refuses an unacknowledged one', async () => {
    const short = await run(['secrets', 'create', '--name', 'SHORT_PIN', '--value', 'pin1234']);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /SECRET_TOO_SHORT/);
    const ref = ok(await run(['secrets', 'create', '--name', 'SHORT_PIN', '--value', 'pin1234', '--allow-short'])).trim();
    assert.match(ok(await run(['secrets', 'describe', 'SHORT_PIN'])), /short value/);
    ok(await run(['credential', 'create', 'shorty', '--provider', 'shorty', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-pin', '--host', up.host, '--allow-http', '--allow-private-network']));
    ok(await run(['capability', 'create', 'shorty/api', '--provider', 'shorty', '--credential', 'shorty', '--method', 'GET', '--path', '/v1']));
    assert.equal((await run(['invoke', 'shorty/api', '--path', '/v1/impersonate'])).code, 0, 'acknowledged: used');
    // A vault from before the rule holds a short value without the acknowledgement (the edit
    // resealed, as that vault's own state would be).
    const db = new DatabaseSync(join(v.dir, 'vault.db'));
    db.exec("UPDATE secrets SET allow_short = 0 WHERE name = 'SHORT_PIN'");
    db.close();
    const owner = await Vault.open({ dir: v.dir, toVerify: true });
    await owner.storage.sealState().finally(() => owner.close());
    const refused = await run(['invoke', 'shorty/api', '--path', '/v1/impersonate']);
    assert.equal(refused.code, 7);
    assert.match(refused.stderr, /CREDENTIAL_NOT_READY/);
  });
});
