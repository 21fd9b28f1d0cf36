// The one-shot loopback endpoint behind `aivault secrets ingest`: a random path and a
// one-time token, 127.0.0.1 only, one value accepted. The sender is told "stored" only
// after `store` has committed it, and told why when it was not; every other sender is
// refused (404 without the path and token, 409 once a value was taken). Each connection
// gets a bounded time for its headers and its body, so a local process that finds the
// port and stalls cannot hold up the owner's request, nor keep the command alive.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AivaultError, categoryOf } from '../errors.ts';
import { messageWithFlags } from './flags.ts';
import { readCapped } from '../read-capped.ts';
import { MAX_SECRET_BYTES } from '../vault/values.ts';

/** Time a connection has to send its headers, and its whole request (the owner's client needs milliseconds). */
export const HEADERS_TIMEOUT_MS = 3_000;
export const REQUEST_TIMEOUT_MS = 5_000;
const ALREADY = 'refused: a value was already received; this one was not stored';
const NOT_HERE = 'refused: no such ingest path, or a wrong or missing token (send it in the x-ingest-token header); nothing was stored';
/** A form carries the value URL-encoded (up to three bytes per byte) and the token. */
const MAX_FORM_BYTES = 3 * MAX_SECRET_BYTES + 4096;

const FORM = (action: string, token: string) => `<!doctype html><meta charset="utf-8"><title>aivault</title>
<form method="post" action="${action}"><input type="hidden" name="token" value="${token}">
<label>Secret value <input type="password" name="value" autofocus></label> <button>Store</button></form>`;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function answer(res: ServerResponse, status: number, text = ''): Promise<void> {
  if (res.headersSent || res.destroyed) return Promise.resolve();
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  // Answered before its body was read (413, or 409 to a sender still sending): end the connection.
  if (status !== 200) res.setHeader('connection', 'close');
  return new Promise((resolve) => res.end(text ? `${text}\n` : '', () => resolve()));
}

/** The HTTP status for a value the vault refused (its code goes in the body). */
function statusOf(err: unknown): number {
  return err instanceof AivaultError ? categoryOf(err.code).status : 500;
}

export interface IngestOptions<T> {
  timeoutMs: number;
  /** Called once the endpoint listens, with its URL and token (to print). */
  announce(url: string, token: string): void;
  /** Stores the value; the endpoint answers only after it resolves (or with its error). */
  store(value: Buffer): Promise<T>;
  /** What the sender is told once it is stored (no value in it). */
  receipt(stored: T): string;
}

/**
 * Serves until one value with the right path and token has been stored (or refused by
 * `store`), or the timeout passes; resolves with what `store` returned. The value buffer is
 * wiped after `store` returns.
 */
export async function receiveOne<T>(o: IngestOptions<T>): Promise<T> {
  const path = `/ingest/${randomBytes(16).toString('base64url')}`;
  const token = randomBytes(24).toString('base64url');
  let taken = false;
  const inFlight = new Set<ServerResponse>();
  let settle: { resolve(v: T): void; reject(e: unknown): void };
  const outcome = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));

  const server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 500 }, (req, res) => {
    handle(req, res).catch(() => answer(res, 500));
  });

  /** Closes the endpoint: nobody new gets in, senders still in flight are refused, stalled ones cut off. */
  const finish = async (winner?: ServerResponse) => {
    clearTimeout(timer);
    server.close();
    await Promise.all([...inFlight].filter((r) => r !== winner).map((r) => answer(r, 409, ALREADY)));
    server.closeAllConnections();
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('cache-control', 'no-store');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== path) return answer(res, 404, NOT_HERE);
    if (taken) return answer(res, 409, ALREADY);
    if (req.method === 'GET' && same(url.searchParams.get('t') ?? '', token)) {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('content-security-policy', "default-src 'none'; form-action 'self'");
      return void res.end(FORM(path, token));
    }
    if (req.method !== 'POST') return answer(res, 405, 'refused: POST the value (or GET this URL with ?t=TOKEN for a form); nothing was stored');
    // A sender with the token header sends the raw value, whatever content type its client
    // put on it (curl --data-binary says application/x-www-form-urlencoded); the browser form
    // cannot set that header, and carries the token in its fields.
    const tokenHeader = req.headers['x-ingest-token'];
    const form = tokenHeader === undefined && String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const cap = form ? MAX_FORM_BYTES : MAX_SECRET_BYTES;
    const tooLarge = `refused: a secret value may hold at most ${MAX_SECRET_BYTES} bytes; nothing was stored`;
    if (Number(req.headers['content-length'] ?? 0) > cap) return answer(res, 413, tooLarge);
    inFlight.add(res);
    let body: Buffer | undefined;
    try {
      body = await readCapped(req, cap);
    } catch {
      return; // the sender went away (or ran out of time): nothing to answer
    } finally {
      inFlight.delete(res);
    }
    if (!body) return answer(res, 413, tooLarge);
    let value: Buffer | undefined;
    if (form) {
      const fields = new URLSearchParams(body.toString('utf8'));
      body.fill(0);
      if (same(fields.get('token') ?? '', token)) value = Buffer.from(fields.get('value') ?? '', 'utf8');
    } else if (same(String(tokenHeader ?? ''), token)) {
      value = body;
    }
    if (!value) {
      body.fill(0);
      return answer(res, 404, NOT_HERE);
    }
    if (taken) {
      value.fill(0);
      return answer(res, 409, ALREADY);
    }
    taken = true;
    try {
      const stored = await o.store(value);
      await answer(res, 200, o.receipt(stored));
      settle.resolve(stored);
    } catch (err) {
      await answer(res, statusOf(err), `refused: ${err instanceof AivaultError ? `${err.code}: ${messageWithFlags(err)}` : 'INTERNAL_ERROR'}; nothing was stored`);
      settle.reject(err);
    } finally {
      value.fill(0);
      await finish(res);
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const timer = setTimeout(() => {
    if (taken) return; // a value is being stored: its outcome decides
    taken = true;
    settle.reject(new AivaultError('INVALID_ARGUMENT', 'no value arrived before the timeout; nothing stored'));
    void finish();
  }, o.timeoutMs);
  o.announce(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, token);
  return outcome;
}
