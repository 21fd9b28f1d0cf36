import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../../src/cli/ingest-endpoint.ts';
import { CLI, assertNoLeak, canary, tempVault, type TempVault, CHILD_ENV } from '../helpers/cli.ts';

interface Ingest {
  url: string;
  token: string;
  /** Resolves with the exit code, all stdout and all stderr once the command ends. */
  exited: Promise<{ code: number | null; out: string; err: string }>;
}

const curl = spawnSync('curl', ['--version']).status === 0;

/** What a test left running (it failed half-way): ended in after(). */
const leftovers: Array<{ destroy(): unknown }> = [];

function ingest(v: TempVault, name: string, timeout = '60'): Promise<Ingest> {
  const child = spawn(process.execPath, [CLI, 'secrets', 'ingest', name, '--json', '--timeout', timeout], { env: { ...CHILD_ENV, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  leftovers.push({ destroy: () => child.kill() });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.once('close', (code) => resolve({ code, out, err })));
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve({ ...(JSON.parse(String(d).split('\n')[0]!) as { url: string; token: string }), exited }));
    void exited.then((e) => reject(new Error(`ingest ended before listening: ${e.err}`)));
  });
}

const post = (i: Ingest, body: string | Buffer) => fetch(i.url, { method: 'POST', headers: { 'x-ingest-token': i.token }, body });

/** Resolves with how long (ms) the server took to close a connection that sends `prefix` and then stalls. */
function stall(i: Ingest, prefix: string): Promise<number> {
  const started = Date.now();
  const { port } = new URL(i.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(prefix));
    leftovers.push(socket);
    socket.on('error', () => {});
    socket.resume();
    socket.once('close', () => resolve(Date.now() - started));
  });
}

describe('secrets ingest', () => {
  let v: TempVault;
  before(async () => {
    v = await tempVault();
  });
  after(() => {
    for (const l of leftovers) l.destroy();
    v.cleanup();
  });

  const matches = async (name: string, value: string) => (JSON.parse((await v.cli(['secrets', 'compare', name, '--json'], { input: value })).stdout) as { match: boolean }).match;

  it('accepts exactly one value with the right token, on 127.0.0.1, then closes', async () => {
    const value = canary('INGEST');
    const i = await ingest(v, 'INGESTED_KEY');
    assert.match(i.url, /^http:\/\/127\.0\.0\.1:\d+\/ingest\/[A-Za-z0-9_-]{22}$/);

    const wrongPath = await fetch(i.url.replace(/ingest\/.*/, 'ingest/guess'), { method: 'POST', headers: { 'x-ingest-token': i.token }, body: 'x' });
    assert.equal(wrongPath.status, 404);
    assert.match(await wrongPath.text(), /^refused: no such ingest path, or a wrong or missing token/);
    const wrongToken = await fetch(i.url, { method: 'POST', headers: { 'x-ingest-token': 'nope' }, body: 'x' });
    assert.equal(wrongToken.status, 404);
    assert.match(await wrongToken.text(), /wrong or missing token \(send it in the x-ingest-token header\); nothing was stored/);
    const page = await fetch(`${i.url}?t=${i.token}`);
    assert.match(await page.text(), /<form method="post"/);
    const tooBig = await post(i, 'x'.repeat(80 * 1024));
    assert.equal(tooBig.status, 413);
    const ok = await post(i, value);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^stored INGESTED_KEY \(version 1\)/);
    const { code, out } = await i.exited;
    assert.equal(code, 0);
    await assert.rejects(post(i, 'again-and-again'));
    assertNoLeak(out, value, 'ingest output');
    assert.equal(await matches('INGESTED_KEY', value), true);
  });

  it('takes the raw value whatever its content type: curl --data-binary (a form content type) is stored as sent', { skip: !curl && 'no curl binary' }, async () => {
    const value = `${canary('CURLED')}&a=b+c%20d`; // what a form decoder would mangle
    const i = await ingest(v, 'CURLED_KEY');
    const file = join(v.dir, '..', 'curled');
    writeFileSync(file, value, { mode: 0o600 });
    const r = spawnSync('curl', ['-sS', '-w', '\n%{http_code}', '-H', `x-ingest-token: ${i.token}`, '--data-binary', `@${file}`, i.url], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^stored CURLED_KEY \(version 1\)[^]*\n200$/);
    assert.equal((await i.exited).code, 0);
    assert.equal(await matches('CURLED_KEY', value), true, 'stored byte for byte, not form-decoded');
  });

  it('a value the vault refuses is answered with its code, not "received"; one just over 64 KiB is 413 before it is read', async () => {
    const i = await ingest(v, 'REFUSED_KEY');
    const over = await post(i, Buffer.alloc(64 * 1024 + 1, 0x61));
    assert.equal(over.status, 413, 'declared length');
    // Chunked (no length given): refused once the cap is passed.
    const chunks = new ReadableStream({ start: (c) => { for (let n = 0; n < 5; n++) c.enqueue(new Uint8Array(16 * 1024).fill(0x61)); c.close(); } });
    const chunked = await fetch(i.url, { method: 'POST', headers: { 'x-ingest-token': i.token }, body: chunks, duplex: 'half' } as RequestInit);
    assert.equal(chunked.status, 413, 'streamed length');
    const short = await post(i, 'abc');
    assert.equal(short.status, 400);
    assert.match(await short.text(), /SECRET_TOO_SHORT.*nothing was stored/);
    const { code, err } = await i.exited;
    assert.equal(code, 2);
    assert.equal((JSON.parse(err) as { error: { code: string } }).error.code, 'SECRET_TOO_SHORT');
    assert.equal(JSON.parse((await v.cli(['secrets', 'list', '--json'])).stdout).some((s: { name: string }) => s.name === 'REFUSED_KEY'), false);
  });

  it('a second value in flight is refused (409), and the first one is what is stored', async () => {
    const first = canary('FIRST');
    const second = canary('SECOND');
    const i = await ingest(v, 'RACED_KEY');
    // The second sender starts first and is still sending its body when the first is stored.
    const slow = request(i.url, { method: 'POST', headers: { 'x-ingest-token': i.token, 'content-length': Buffer.byteLength(second) } });
    slow.on('error', () => {});
    const slowAnswer = new Promise<{ status: number; text: string }>((resolve) => slow.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', () => resolve({ status: res.statusCode!, text }));
    }));
    slow.write(second.slice(0, 4));
    await new Promise((r) => setTimeout(r, 200));
    const ok = await post(i, first);
    assert.equal(ok.status, 200);
    slow.end(second.slice(4));
    const refused = await slowAnswer;
    assert.equal(refused.status, 409);
    assert.match(refused.text, /already received/);
    assert.equal((await i.exited).code, 0);
    assert.equal(await matches('RACED_KEY', first), true);
  });

  it('a connection that stalls (headers or body) neither blocks the owner nor outlives its time', { timeout: 40_000 }, async () => {
    const value = canary('STALLED');
    const i = await ingest(v, 'STALLED_KEY', '30');
    const path = new URL(i.url).pathname;
    const headers = stall(i, `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
    const body = stall(i, `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-ingest-token: ${i.token}\r\ncontent-length: 100\r\n\r\nabc`);
    const [headersMs, bodyMs] = await Promise.all([headers, body]);
    assert.ok(headersMs >= HEADERS_TIMEOUT_MS - 100 && headersMs < HEADERS_TIMEOUT_MS + 2000, `stalled headers cut off after ${headersMs} ms`);
    assert.ok(bodyMs >= REQUEST_TIMEOUT_MS - 100 && bodyMs < REQUEST_TIMEOUT_MS + 2000, `stalled body cut off after ${bodyMs} ms`);
    // And while one stalls, the owner's value is stored and the command ends at once.
    const staller = stall(i, `POST ${path} HTTP/1.1\r\n`);
    const ok = await post(i, value);
    assert.equal(ok.status, 200);
    const started = Date.now();
    assert.equal((await i.exited).code, 0);
    assert.ok(Date.now() - started < 2000, 'the command did not wait for the stalled connection');
    await staller;
    assert.equal(await matches('STALLED_KEY', value), true);
  });

  it('refuses a timeout that is not whole seconds from 1 to 3600, before listening', async () => {
    // ingest() rejects when the command ends without announcing an endpoint.
    await Promise.all(['abc', '1e10', '-5', '0', '3601'].map((t) => assert.rejects(ingest(v, 'TIMEOUT_KEY', t), /INVALID_ARGUMENT.*--timeout is a whole number of seconds/, t)));
  });
});
