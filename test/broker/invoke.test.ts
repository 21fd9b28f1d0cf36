import assert from 'node:assert/strict';
import { pbkdf2 } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { brotliCompressSync, constants as zlibConstants, createGzip, deflateSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { isAivaultError, type ErrorCode } from '../../src/errors.ts';
import type { InvokeRequest } from '../../src/broker/broker.ts';
import { bodyOf } from '../../src/broker/respond.ts';
import { assertNoLeak, canary } from '../helpers/cli.ts';
import { readAll, testBroker, type TestBroker } from '../helpers/broker.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('broker invoke against a real loopback upstream', () => {
  let up: Upstream;
  let t: TestBroker;
  const key = canary('KEY');
  let header: string;

  before(async () => {
    up = await startUpstream();
    t = await testBroker();
    header = await t.custom({ name: 'hdr', auth: { header: { header_name: 'authorization', value_template: 'Bearer {{secret}}' } }, secrets: { secret: key }, hosts: [up.host], paths: ['/v1'] });
  });
  after(async () => {
    await t.close();
    await up.close();
  });

  const last = () => up.received.at(-1)!;
  const invoke = async (req: Partial<InvokeRequest> & { capability: string }) => {
    const res = await t.broker.invoke({ method: 'GET', ...req });
    const body = await readAll(res.body);
    await res.done;
    return { ...res, text: body };
  };
  /** The outcome of the audit record `seq`, with everything queued written first. */
  const outcomeOf = async (seq: number) => {
    await t.vault.audit.flush();
    return (await t.vault.audit.list()).find((r) => r.seq === seq)!.outcome;
  };
  const refused = async (req: Partial<InvokeRequest> & { capability: string }, code: ErrorCode) => {
    const before = up.received.length;
    await assert.rejects(t.broker.invoke({ method: 'GET', ...req }), (e) => isAivaultError(e, code), `${JSON.stringify(req)} should be ${code}`);
    assert.equal(up.received.length, before, 'a refused request must not reach the upstream');
  };

  it('injects a header credential and the upstream sees exactly it', async () => {
    const res = await invoke({ capability: header, path: '/v1/users/42', query: [['page', '2']] });
    assert.equal(res.status, 200);
    assert.equal(last().headers.authorization, `Bearer ${key}`);
    assert.equal(last().url, '/v1/users/42?page=2');
  });

  it('drops smuggled credentials, hop-by-hop headers and Host; the credential wins whatever the case', async () => {
    await invoke({
      capability: header,
      path: '/v1/x',
      headers: [['AUTHORIZATION', 'Bearer agent-token'], ['authorization', 'Basic xyz'], ['Cookie', 'session=1'], ['Proxy-Authorization', 'x'], ['Host', 'evil.example.com'], ['Connection', 'X-Drop-Me'], ['X-Drop-Me', '1'], ['Transfer-Encoding', 'chunked'], ['X-Keep', 'yes']],
    });
    const r = last();
    const authHeaders = r.rawHeaders.filter((_, i) => i % 2 === 0).filter((h) => h.toLowerCase() === 'authorization');
    assert.equal(authHeaders.length, 1);
    assert.equal(r.headers.authorization, `Bearer ${key}`);
    assert.equal(r.headers.cookie, undefined);
    assert.equal(r.headers['proxy-authorization'], undefined);
    assert.equal(r.headers.host, up.host);
    assert.equal(r.headers['x-drop-me'], undefined);
    assert.equal(r.headers['x-keep'], 'yes');
  });

  it('refuses header injection through CR/LF in agent headers', async () => {
    await refused({ capability: header, path: '/v1/x', headers: [['X-A', 'ok\r\nAuthorization: Bearer evil']] }, 'MALFORMED_HEADER');
    await refused({ capability: header, path: '/v1/x', headers: [['X A', 'ok']] }, 'MALFORMED_HEADER');
  });

  it('query, multi_query, path, basic and multi_header strategies inject exactly as configured', async () => {
    const q = await t.custom({ name: 'qry', auth: { query: { param_name: 'key' } }, secrets: { secret: 'qk-123456' }, hosts: [up.host] });
    await invoke({ capability: q, path: '/v1/s', query: [['key', 'agent-override'], ['q', 'x y']] });
    assert.equal(last().url, '/v1/s?q=x+y&key=qk-123456');

    const mq = await t.custom({ name: 'mqry', auth: { multi_query: [{ param_name: 'key', value_template: '{{api_key}}' }, { param_name: 'token', value_template: '{{token}}' }] }, secrets: { api_key: 'k-aaaa-1111', token: 't-bbbb-2222' }, hosts: [up.host] });
    await invoke({ capability: mq, path: '/v1/boards' });
    assert.equal(last().url, '/v1/boards?key=k-aaaa-1111&token=t-bbbb-2222');

    const p = await t.custom({ name: 'pth', auth: { path: { prefix_template: '/bot{{secret}}' } }, secrets: { secret: '123:ABC-def' }, hosts: [up.host], paths: ['/sendMessage'] });
    await invoke({ capability: p, path: '/sendMessage', method: 'POST', body: Buffer.from('{}') });
    assert.equal(last().url, '/bot123:ABC-def/sendMessage');
    const slash = await t.custom({ name: 'pth2', auth: { path: { prefix_template: '/bot{{secret}}' } }, secrets: { secret: '123/../admin' }, hosts: [up.host], paths: ['/sendMessage'] });
    await refused({ capability: slash, path: '/sendMessage', method: 'POST' }, 'CREDENTIAL_INVALID');
    await refused({ capability: p, path: '/getUpdates' }, 'PATH_NOT_ALLOWED');

    const b = await t.custom({ name: 'bas', auth: 'basic', secrets: { username: 'AC1234567', password: 'pw-secret-1' }, hosts: [up.host] });
    await invoke({ capability: b, path: '/v1/Messages', headers: [['Authorization', 'Basic ZXZpbA==']] });
    assert.equal(last().headers.authorization, `Basic ${Buffer.from('AC1234567:pw-secret-1').toString('base64')}`);

    const mh = await t.custom({ name: 'mhdr', auth: { multi_header: [{ header_name: 'DD-API-KEY', value_template: '{{api_key}}' }, { header_name: 'DD-APPLICATION-KEY', value_template: '{{app_key}}' }] }, secrets: { api_key: 'dd-api-1', app_key: 'dd-app-2' }, hosts: [up.host] });
    await invoke({ capability: mh, path: '/v1/validate', headers: [['dd-api-key', 'agent']] });
    assert.equal(last().headers['dd-api-key'], 'dd-api-1');
    assert.equal(last().headers['dd-application-key'], 'dd-app-2');
  });

  it('refuses methods, paths, hosts and schemes outside the capability, before any byte goes upstream', async () => {
    await refused({ capability: header, path: '/v1/x', method: 'DELETE' }, 'METHOD_NOT_ALLOWED');
    await refused({ capability: header, path: '/v2/x' }, 'PATH_NOT_ALLOWED');
    await refused({ capability: header, path: '/v1-admin' }, 'PATH_NOT_ALLOWED');
    await refused({ capability: header, path: '/v1/../admin' }, 'MALFORMED_PATH');
    await refused({ capability: header, path: '/v1/%2e%2e/admin' }, 'MALFORMED_PATH');
    await refused({ capability: header, path: '/v1/a%2fb' }, 'MALFORMED_PATH');
    await refused({ capability: header, host: '127.0.0.1:1', path: '/v1/x' }, 'HOST_NOT_ALLOWED');
    await refused({ capability: header, host: `localhost:${up.port}`, path: '/v1/x' }, 'HOST_NOT_ALLOWED');
    await refused({ capability: header, url: `http://user:pw@${up.host}/v1/x` }, 'MALFORMED_URL');
    await refused({ capability: 'nope/none', path: '/v1' }, 'CAPABILITY_NOT_FOUND');
  });

  it('refuses plain http and private addresses unless the owner allowed them', async () => {
    const strict = await t.custom({ name: 'strict', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secrets: { secret: 'strict-key-1' }, hosts: [up.host], allowHttp: false, allowPrivateNetwork: true });
    await refused({ capability: strict, url: `http://${up.host}/v1/x` }, 'INSECURE_SCHEME');
    const noPrivate = await t.custom({ name: 'noprivate', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secrets: { secret: 'np-key-1234' }, hosts: [up.host, `localhost:${up.port}`], allowHttp: true, allowPrivateNetwork: false });
    await refused({ capability: noPrivate, host: up.host, path: '/v1/x' }, 'PRIVATE_ADDRESS_BLOCKED');
    // A name is resolved and every address checked: localhost resolves to loopback.
    await refused({ capability: noPrivate, host: `localhost:${up.port}`, path: '/v1/x' }, 'PRIVATE_ADDRESS_BLOCKED');
  });

  it('never follows a redirect: the 3xx goes back to the agent', async () => {
    up.handle('/v1/redirect', (_req, res) => {
      res.statusCode = 302;
      res.setHeader('location', `http://${up.host}/v1/landing`);
      res.end();
    });
    const before = up.received.length;
    const res = await invoke({ capability: header, path: '/v1/redirect' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.find(([k]) => k === 'location')?.[1], `http://${up.host}/v1/landing`);
    assert.equal(up.received.length, before + 1);
  });

  it('scrubs the secret from echoed headers and bodies, in every encoding and across chunks', async () => {
    up.handle('/v1/echo', (req, res) => {
      res.setHeader('x-echo', String(req.headers.authorization));
      res.setHeader('x-echo-b64', Buffer.from(key).toString('base64'));
      const body = `{"raw":"${key}","b64":"${Buffer.from(key).toString('base64')}","url":"${encodeURIComponent(key)}"}`;
      const mid = body.indexOf(key) + 5;
      res.write(body.slice(0, mid));
      setTimeout(() => res.end(body.slice(mid)), 20);
    });
    const res = await invoke({ capability: header, path: '/v1/echo' });
    assertNoLeak(res.text, key, 'response body');
    assertNoLeak(JSON.stringify(res.headers), key, 'response headers');
    assert.match(res.text, /"raw":"\[REDACTED\]"/);
    assert.equal(res.headers.find(([k]) => k === 'x-echo')?.[1], '[REDACTED]');
  });

  it("drops the response headers the upstream's Connection names, as hop-by-hop (RFC 9110 §7.6.1)", async () => {
    up.handle('/v1/hop', (_req, res) => {
      res.setHeader('connection', 'X-Hop-Note, keep-alive');
      res.setHeader('x-hop-note', 'for this connection only');
      res.setHeader('x-kept', 'end to end');
      res.end('ok');
    });
    const res = await invoke({ capability: header, path: '/v1/hop' });
    const names = res.headers.map(([k]) => k.toLowerCase());
    assert.ok(names.includes('x-kept'));
    assert.ok(!names.includes('x-hop-note'), names.join(', '));
  });

  it('decodes gzip so it can scrub, and refuses encodings it cannot read', async () => {
    up.handle('/v1/gzip', (_req, res) => {
      res.setHeader('content-encoding', 'gzip');
      res.end(gzipSync(`secret=${key}`));
    });
    const res = await invoke({ capability: header, path: '/v1/gzip' });
    assert.equal(res.text, 'secret=[REDACTED]');
    assert.equal(res.headers.some(([k]) => k === 'content-encoding'), false);
    up.handle('/v1/zstd', (_req, res) => {
      res.setHeader('content-encoding', 'compress');
      res.end('xx');
    });
    await assert.rejects(t.broker.invoke({ capability: header, method: 'GET', path: '/v1/zstd' }), (e) => isAivaultError(e, 'UPSTREAM_ERROR'));
  });

  it('a small compressed answer is decoded and scrubbed whole; one that decodes past what is held at once goes on as a stream, scrubbed all the same', async () => {
    const encoders = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };
    for (const [encoding, encode] of Object.entries(encoders)) {
      // Small: one buffer, its record counting the decoded bytes.
      up.handle(`/v1/small-${encoding}`, (_req, res) => {
        res.setHeader('content-encoding', encoding);
        res.end(encode(`{"echo":"${key}"}`));
      });
      const small = await t.broker.invoke({ capability: header, method: 'GET', path: `/v1/small-${encoding}` });
      assert.equal(String(await small.whole), '{"echo":"[REDACTED]"}', encoding);
      await small.done;
      assert.equal((await outcomeOf(small.auditSeq))?.bytesOut, `{"echo":"${key}"}`.length);
      // Highly compressible: 64 KiB on the wire at most, far more decoded. The key sits on
      // each side of what is held at once (64 KiB) and across 512 KiB.
      const filler = (n: number) => 'a'.repeat(n);
      const plain = `${key} ${filler(512 * 1024 - key.length - 8)}${key}${filler(300 * 1024)} ${key}`;
      up.handle(`/v1/large-${encoding}`, (_req, res) => {
        res.setHeader('content-encoding', encoding);
        res.end(encode(plain));
      });
      const large = await t.broker.invoke({ capability: header, method: 'GET', path: `/v1/large-${encoding}` });
      assert.equal(await large.whole, undefined, `${encoding}: too large to hold at once`);
      const text = await readAll(large.body);
      await large.done;
      assert.equal(text, plain.replaceAll(key, '[REDACTED]'), `${encoding}: every occurrence scrubbed, nothing lost`);
      assert.equal((await outcomeOf(large.auditSeq))?.bytesOut, plain.length);
    }
    // A bomb past the capability's limit: refused whether the limit is under what is held at once or over it.
    for (const maxResponseBytes of [50_000, 2_000_000]) {
      const capped = await t.custom({ name: `bomb-${maxResponseBytes}`, auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secrets: { secret: `bomb-key-${maxResponseBytes}` }, hosts: [up.host], limits: { maxResponseBytes } });
      up.handle(`/v1/bomb-${maxResponseBytes}`, (_req, res) => {
        res.setHeader('content-encoding', 'gzip');
        res.end(gzipSync(Buffer.alloc(maxResponseBytes + 1, 'b')));
      });
      const bomb = await t.broker.invoke({ capability: capped, method: 'GET', path: `/v1/bomb-${maxResponseBytes}` });
      await assert.rejects(readAll(bomb.body), (e) => isAivaultError(e, 'RESPONSE_TOO_LARGE'), `limit ${maxResponseBytes}`);
      await assert.rejects(bomb.done, (e) => isAivaultError(e, 'RESPONSE_TOO_LARGE'));
      assert.equal((await outcomeOf(bomb.auditSeq))?.error, 'RESPONSE_TOO_LARGE');
    }
    // Corrupt: cut inside the compressed stream.
    up.handle('/v1/corrupt', (_req, res) => {
      res.setHeader('content-encoding', 'gzip');
      const z = gzipSync(`secret=${key} and more text to compress`);
      res.end(z.subarray(0, z.length - 12));
    });
    const corrupt = await t.broker.invoke({ capability: header, method: 'GET', path: '/v1/corrupt' });
    await assert.rejects(bodyOf(corrupt), (e) => isAivaultError(e, 'UPSTREAM_ERROR') && !e.message.includes(key));
    assert.equal((await outcomeOf(corrupt.auditSeq))?.error, 'UPSTREAM_ERROR');
  });

  it('an answer of no declared size is read whole while it is small and quick, else streams with nothing lost; an event stream always streams', async () => {
    const chunked = (path: string, pieces: Array<string | number>, type = 'application/json') =>
      up.handle(path, async (_req, res) => {
        res.setHeader('content-type', type);
        res.flushHeaders();
        // A number is a pause in milliseconds; a string is written as one chunk.
        for (const p of pieces) {
          if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
          else res.write(p);
        }
        res.end();
      });
    chunked('/v1/chunked-small', ['{"echo":"', key, '"}']);
    const small = await t.broker.invoke({ capability: header, method: 'GET', path: '/v1/chunked-small' });
    assert.equal(String(await small.whole), '{"echo":"[REDACTED]"}');
    // Past 64 KiB: the key across the point where it goes on as a stream, and again after.
    const head = 'a'.repeat(64 * 1024 - 10);
    chunked('/v1/chunked-large', [head, key, 'b'.repeat(1000), key]);
    const large = await t.broker.invoke({ capability: header, method: 'GET', path: '/v1/chunked-large' });
    assert.equal(await large.whole, undefined);
    assert.equal(await readAll(large.body), `${head}[REDACTED]${'b'.repeat(1000)}[REDACTED]`);
    // Slow: the first bytes, then a pause longer than the whole wait.
    chunked('/v1/chunked-slow', [`first ${key} `, 200, `then ${key}`]);
    const slow = await t.broker.invoke({ capability: header, method: 'GET', path: '/v1/chunked-slow' });
    assert.equal(await slow.whole, undefined);
    assert.equal(await readAll(slow.body), 'first [REDACTED] then [REDACTED]');
    await Promise.all([small.done, large.done, slow.done]);
    // Server-sent events go out as they come, never held for the whole.
    chunked('/v1/chunked-sse', ['data: 1\n\n', 'data: 2\n\n'], 'text/event-stream; charset=utf-8');
    const sse = await t.broker.invoke({ capability: header, method: 'GET', path: '/v1/chunked-sse' });
    assert.equal(sse.whole, undefined);
    assert.equal(await readAll(sse.body), 'data: 1\n\ndata: 2\n\n');
  });

  it('a compressed stream is not taken for quiet while its decoder holds input: a late decode does not release a key that was half there (an attacker had 31 of 32 characters)', async () => {
    // The key's last character apart from the rest, each part flushed so it decodes on its own.
    const gz = createGzip();
    const out: Buffer[] = [];
    gz.on('data', (c: Buffer) => out.push(c));
    gz.write(`data: ${key.slice(0, -1)}`);
    await new Promise<void>((r) => gz.flush(zlibConstants.Z_SYNC_FLUSH, () => r()));
    const first = Buffer.concat(out.splice(0));
    const ended = new Promise((r) => gz.once('end', r));
    gz.end(`${key.slice(-1)}\n\n`);
    await ended;
    const rest = Buffer.concat(out);
    up.handle('/v1/gzip-late', (_req, res) => {
      res.setHeader('content-type', 'text/event-stream');
      res.setHeader('content-encoding', 'gzip');
      res.write(first);
      setTimeout(() => {
        // The rest arrives well within the idle wait, but its decode waits behind work that fills
        // the thread pool for longer than that (under load: other decodes, full durability's
        // flushes; the attacker stalled the event loop instead).
        for (let i = 0; i < Number(process.env.UV_THREADPOOL_SIZE ?? 4); i++) pbkdf2('x', 'y', 400_000, 32, 'sha256', () => {});
        res.end(rest);
      }, 10);
    });
    const res = await invoke({ capability: header, path: '/v1/gzip-late' });
    assert.equal(res.text, 'data: [REDACTED]\n\n');
  });

  it('refuses a transfer-coding other than chunked, which reaches it still applied (an attacker had gzip pass unscrubbed)', async () => {
    up.handle('/v1/te-gzip', (_req, res) => {
      res.setHeader('transfer-encoding', 'gzip, chunked');
      res.end(gzipSync(`secret=${key}`));
    });
    await assert.rejects(t.broker.invoke({ capability: header, method: 'GET', path: '/v1/te-gzip' }), (e) => isAivaultError(e, 'UPSTREAM_ERROR'));
    up.handle('/v1/ce-twice', (_req, res) => {
      res.setHeader('content-encoding', ['gzip', 'gzip']);
      res.end(gzipSync(gzipSync(`secret=${key}`)));
    });
    await assert.rejects(t.broker.invoke({ capability: header, method: 'GET', path: '/v1/ce-twice' }), (e) => isAivaultError(e, 'UPSTREAM_ERROR'));
  });

  it('streams server-sent events one by one, not at the end', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    up.handle('/v1/sse', async (_req, res) => {
      res.setHeader('content-type', 'text/event-stream');
      res.write('data: {"n":1}\n\n');
      await gate;
      res.end('data: {"n":2}\n\n');
    });
    const res = await t.broker.invoke({ capability: header, method: 'GET', path: '/v1/sse' });
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(String(first.value), 'data: {"n":1}\n\n', 'the first event arrives while the upstream still holds the second');
    release();
    let rest = '';
    for (let n = await it.next(); !n.done; n = await it.next()) rest += String(n.value);
    assert.equal(rest, 'data: {"n":2}\n\n');
    await res.done;
  });

  it('times out a slow upstream and caps response and request sizes', async () => {
    const limited = await t.custom({ name: 'limited', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secrets: { secret: 'lim-key-123' }, hosts: [up.host], limits: { timeoutMs: 300, maxResponseBytes: 1000, maxRequestBytes: 100 } });
    up.handle('/v1/slow', (_req, res) => void setTimeout(() => res.end('late'), 2000));
    await assert.rejects(t.broker.invoke({ capability: limited, method: 'GET', path: '/v1/slow' }), (e) => isAivaultError(e, 'UPSTREAM_TIMEOUT'));
    up.handle('/v1/big', (_req, res) => void res.end('x'.repeat(5000)));
    await assert.rejects(t.broker.invoke({ capability: limited, method: 'GET', path: '/v1/big' }), (e) => isAivaultError(e, 'RESPONSE_TOO_LARGE'));
    up.handle('/v1/bigchunked', (_req, res) => {
      res.write('y'.repeat(800));
      res.end('y'.repeat(800));
    });
    const res = await t.broker.invoke({ capability: limited, method: 'GET', path: '/v1/bigchunked' });
    await assert.rejects(readAll(res.body), (e) => isAivaultError(e, 'RESPONSE_TOO_LARGE'));
    const outcome = (await outcomeOf(res.auditSeq))!;
    assert.ok(outcome.error === 'RESPONSE_TOO_LARGE' && outcome.bytesOut! > 1000, `the record counts what came before the cap: ${JSON.stringify(outcome)}`);
    await refused({ capability: limited, method: 'POST', path: '/v1/x', body: Buffer.alloc(101) }, 'REQUEST_TOO_LARGE');
  });

  it('an answer cut short of the size it declared fails at its end, whole or streamed, and its record says so', async () => {
    for (const declared of [100, 1 << 20]) {
      up.handle(`/v1/cut-${declared}`, (_req, res) => {
        res.writeHead(200, { 'content-length': String(declared) });
        res.write(`partial ${key}`);
        setTimeout(() => res.socket!.destroy(), 50);
      });
      const res = await t.broker.invoke({ capability: header, method: 'GET', path: `/v1/cut-${declared}` });
      await assert.rejects(readAll(res.body), (e) => isAivaultError(e, 'UPSTREAM_UNREACHABLE'), `declared ${declared}`);
      await assert.rejects(res.done, (e) => isAivaultError(e, 'UPSTREAM_UNREACHABLE'));
      assert.equal((await outcomeOf(res.auditSeq))?.error, 'UPSTREAM_UNREACHABLE', `declared ${declared}`);
    }
  });

  it('reports an unreachable upstream without quoting it', async () => {
    const dead = await t.custom({ name: 'dead', auth: { query: { param_name: 'key' } }, secrets: { secret: 'dead-key-1234' }, hosts: ['127.0.0.1:1'] });
    await assert.rejects(t.broker.invoke({ capability: dead, method: 'GET', path: '/v1/x' }), (e) => isAivaultError(e, 'UPSTREAM_UNREACHABLE') && !e.message.includes('dead-key'));
  });

  it('a credential whose secret was deleted is not ready', async () => {
    const cap = await t.custom({ name: 'gone', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secrets: { secret: 'gone-key-123' }, hosts: [up.host] });
    const cred = await t.services.catalog.describeCredential('gone');
    await t.vault.storage.deleteSecret([...cred.bindings.values()][0]!);
    await refused({ capability: cap, path: '/v1/x' }, 'CREDENTIAL_NOT_READY');
  });

  it('fails closed: when the audit record cannot be written, nothing goes upstream', async () => {
    const cap = await t.custom({ name: 'failclosed', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secrets: { secret: 'fc-key-1234' }, hosts: [up.host] });
    await t.vault.audit.flush();
    const db = new DatabaseSync(join(t.dir, 'audit.db'));
    const head = (db.prepare("SELECT value FROM audit_meta WHERE key = 'head'").get() as { value: string }).value;
    db.prepare("UPDATE audit_meta SET value = 'not json' WHERE key = 'head'").run();
    try {
      await refused({ capability: cap, path: '/v1/x' }, 'VAULT_CORRUPTED');
    } finally {
      db.prepare("UPDATE audit_meta SET value = ? WHERE key = 'head'").run(head);
      db.close();
    }
  });

  it('records every decision in the audit log without secret or query values, and the chain verifies', async () => {
    await t.vault.audit.flush();
    const records = await t.vault.audit.list();
    const invokes = records.filter((r) => r.action === 'invoke');
    assert.ok(invokes.some((r) => r.decision === 'deny' && r.reason === 'PATH_NOT_ALLOWED'));
    assert.ok(invokes.some((r) => r.decision === 'allow' && r.outcome?.status === 200));
    assert.ok(invokes.some((r) => r.decision === 'allow' && r.outcome?.error === 'UPSTREAM_TIMEOUT'));
    const dump = JSON.stringify(records);
    for (const v of [key, 'qk-123456', 'pw-secret-1', '123:ABC', 'dd-api-1', 'x y']) assert.equal(dump.includes(v), false, `audit holds ${v}`);
    assert.ok(invokes.some((r) => r.path === '/v1/users/42?page'));
    assert.deepEqual(await t.vault.audit.verify(), { ok: true, count: records.length });
  });
});
