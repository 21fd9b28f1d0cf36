// npm run bench:scrub -- scrubbing throughput against a plain copy in the same run: 1 KiB,
// 1 MiB and 10 MiB JSON bodies (an escape every ~30 bytes), a 1 MiB prose body (no escapes), one
// with an escape every ~2 KiB (sparse), and an SSE stream of 10 000 small events, with 1, 8 and
// 10 secrets.
// The baseline is a transform that copies each chunk. Prints MB/s, the ratio to it, CPU per SSE event, and the latency the hold adds to
// an event when events come slowly. BENCH_SCRUBBER=path/to/module.ts measures another
// implementation exposing the same `Scrubber` class (e.g. an older one, for before/after).

import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { pathToFileURL } from 'node:url';

interface ScrubberLike {
  stream(options?: { idleMs?: number; maxHoldMs?: number }): Transform;
}
const modulePath = process.env.BENCH_SCRUBBER ?? new URL('../src/broker/scrub/scrubber.ts', import.meta.url).pathname;
const { Scrubber } = (await import(pathToFileURL(modulePath).href)) as { Scrubber: new (values: string[]) => ScrubberLike };

const secrets = Array.from({ length: 10 }, (_, i) => `sk-proj-${i}${randomBytes(36).toString('base64url')}`);

/** JSON-ish text of `size` bytes with no secret in it. */
function body(size: number): Buffer {
  // An LLM's JSON answer: text with JSON escapes (\n, \"), now and then a URL with %XX.
  const words = ['{"id":"chatcmpl-1",', '"content":"', 'Here is ', 'a reply ', 'with \\"quotes\\" ', 'and\\nlines ', 'about things ', 'https://x.example/a%20b ', 'QUJD0123abcd ', '"},'];
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const w = words[(i * 7919) % words.length]!;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/** Prose of `size` bytes: no escapes and no line breaks, the scrubber's best case. */
function prose(size: number): Buffer {
  return Buffer.from('Here is a reply about things, in words and sentences that go on for a while. '.repeat(Math.ceil(size / 78))).subarray(0, size);
}

/** Prose with a percent escape (a URL) every ~2 KiB: escapes far apart, each stretch between them long. */
function sparse(size: number): Buffer {
  const unit = `${'Here is a reply about things, in words and sentences that go on for a while. '.repeat(26)}see https://x.example/a%20b `;
  return Buffer.from(unit.repeat(Math.ceil(size / unit.length))).subarray(0, size);
}

/** Pushes `chunks` through a fresh transform; resolves with the elapsed milliseconds. */
async function run(make: () => Transform, chunks: Buffer[]): Promise<number> {
  const t = make();
  const started = performance.now();
  const done = new Promise<void>((resolve) => t.on('end', resolve));
  t.on('data', () => {});
  for (const c of chunks) if (!t.write(c)) await new Promise((r) => t.once('drain', r));
  t.end();
  await done;
  return performance.now() - started;
}

/** Best of `rounds` (copy and scrub interleaved, so both see the same machine). */
async function measure(chunks: Buffer[], scrubber: ScrubberLike, rounds: number): Promise<{ copy: number; scrub: number }> {
  let copy = Infinity;
  let scrub = Infinity;
  for (let i = 0; i < rounds; i++) {
    copy = Math.min(copy, await run(() => new Transform({ transform: (c: Buffer, _e, cb) => cb(null, Buffer.from(c)) }), chunks));
    scrub = Math.min(scrub, await run(() => scrubber.stream({ idleMs: 60_000, maxHoldMs: 60_000 }), chunks));
  }
  return { copy, scrub };
}

function chunked(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

const rows: string[] = [];
const mbps = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
for (const count of [1, 8, 10]) {
  const scrubber = new Scrubber(secrets.slice(0, count));
  for (const [label, size, rounds, make] of [['1 KiB', 1024, 200, body], ['1 MiB', 1 << 20, 15, body], ['10 MiB', 10 << 20, 4, body], ['prose', 1 << 20, 15, prose], ['sparse', 1 << 20, 15, sparse]] as const) {
    const b = make(size);
    const chunks = chunked(b, 64 * 1024);
    const repeat = size < 65536 ? 500 : 1; // small bodies: many in a row, so timers resolve
    const all = Array.from({ length: repeat }, () => chunks).flat();
    const { copy, scrub } = await measure(all, scrubber, rounds);
    const bytes = size * repeat;
    rows.push(`${label.padEnd(7)} ${String(count).padStart(2)} secret(s)  copy ${mbps(bytes, copy).padStart(6)} MB/s  scrub ${mbps(bytes, scrub).padStart(6)} MB/s  ratio ${(scrub / copy).toFixed(2)}x  (+${(((scrub - copy) / bytes) * 1e6).toFixed(2)} ns/B)`);
  }
  const events = Array.from({ length: 10_000 }, (_, i) => Buffer.from(`data: {"choices":[{"delta":{"content":"tok${i}"}}]}\n\n`));
  const { copy, scrub } = await measure(events, scrubber, 5);
  rows.push(`SSE     ${String(count).padStart(2)} secret(s)  10 000 events: copy ${((copy / 10_000) * 1000).toFixed(2)} µs/event, scrub ${((scrub / 10_000) * 1000).toFixed(2)} µs/event  ratio ${(scrub / copy).toFixed(2)}x`);
}

// Latency: events 5 ms apart (slower than the hold window fills): how long each waits.
{
  const scrubber = new Scrubber(secrets.slice(0, 1));
  const t = scrubber.stream();
  const sent: number[] = [];
  const delays: number[] = [];
  let received = 0;
  t.on('data', (d: Buffer) => {
    const now = performance.now();
    // Every event wholly contained in what arrived is delivered now.
    received += d.length;
    while (delays.length < sent.length && received >= (delays.length + 1) * 64) delays.push(now - sent[delays.length]!);
  });
  for (let i = 0; i < 200; i++) {
    sent.push(performance.now());
    t.write(Buffer.from(`data: ${String(i).padStart(56, '0')}\n\n`)); // 64 bytes
    await new Promise((r) => setTimeout(r, 5));
  }
  t.end();
  await new Promise((r) => t.on('end', r));
  delays.sort((a, b) => a - b);
  const p = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]!.toFixed(1);
  rows.push(`SSE latency, 1 event / 5 ms: added delay p50 ${p(0.5)} ms, p99 ${p(0.99)} ms (hold time bounds it)`);
}

console.log(`scrubber: ${modulePath}`);
for (const r of rows) console.log(r);
