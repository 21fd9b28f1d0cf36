// A minimal JSON upstream for benchmarks, run in its own process so it does not share
// an event loop with the client being measured. Prints its port on stdout. With
// BENCH_EXPECT_AUTHORIZATION set, a request without that Authorization header is 401: a proxy
// that failed to add the key fails the run instead of looking fast.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

/** BENCH_ANSWER_BYTES: a model's long answer of about that size instead (text with JSON escapes, now and then a URL). */
const size = Number(process.env.BENCH_ANSWER_BYTES ?? 0);
function content(bytes: number): string {
  const words = ['Here is ', 'a reply ', 'with "quotes" ', 'and\nlines ', 'about things ', 'https://x.example/a%20b ', 'QUJD0123abcd '];
  const parts: string[] = [];
  for (let i = 0, n = 0; n < bytes; i++) n += (parts[i] = words[(i * 7919) % words.length]!).length;
  return parts.join('');
}
const body = JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: size > 0 ? content(size) : 'hello' } }] });
/** BENCH_ANSWER_ENCODING (gzip, deflate or br): the answer compressed so, to a client that accepts it, as real APIs answer. */
const encoding = process.env.BENCH_ANSWER_ENCODING;
const encoders: Record<string, (b: string) => Buffer> = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };
const compressed = encoding ? encoders[encoding]!(body) : undefined;
/** BENCH_ANSWER_CHUNKED=1: no Content-Length, the body in chunked framing, as many APIs answer. */
const chunked = process.env.BENCH_ANSWER_CHUNKED === '1';
const send = (res: ServerResponse, b: string | Buffer) => (chunked ? (res.write(b), res.end()) : res.end(b));
const expected = process.env.BENCH_EXPECT_AUTHORIZATION;
const server = createServer((req, res) => {
  req.resume();
  if (expected !== undefined && req.headers.authorization !== expected) return void res.writeHead(401).end();
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    if (compressed && String(req.headers['accept-encoding'] ?? '').includes(encoding!)) {
      res.setHeader('content-encoding', encoding!);
      return void send(res, compressed);
    }
    send(res, body);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
