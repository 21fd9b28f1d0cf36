// The response stage, the trust boundary of every answer (invokes and flows alike): the
// upstream's body decoded, size-capped after decoding, scrubbed, and the allow record's
// outcome settled once, whichever way the exchange ends.

import { Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Dispatcher } from 'undici';
import type { AuditLog } from '../audit/log.ts';
import { AivaultError } from '../errors.ts';
import type { AuditOutcome } from '../storage/types.ts';
import { responseHeaders } from './response-headers.ts';
import type { Scrubber } from './scrub/scrubber.ts';
import { upstreamError } from './upstream.ts';
import { readAll } from '../read-capped.ts';

/** What the upstream is told it may compress with: every encoding `decoder` undoes. */
export const ACCEPT_ENCODING = 'gzip, deflate, br';

/** A header's value as one text (a repeated header's values joined as HTTP joins them). */
function oneValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Transfer codings other than chunked (`gzip, chunked`) reach us still applied: undici
 * removes only the chunking. An answer we cannot read is one we cannot scrub.
 */
function assertPlainTransfer(coding: string | undefined): void {
  if (coding === undefined) return;
  if (coding.split(',').every((c) => ['', 'chunked'].includes(c.trim().toLowerCase()))) return;
  throw new AivaultError('UPSTREAM_ERROR', 'the upstream used a transfer-coding aivault cannot decode, so it cannot scrub the answer');
}

function decoder(encoding: string | undefined): Transform | undefined {
  const e = (encoding ?? 'identity').trim().toLowerCase();
  if (e === '' || e === 'identity') return undefined;
  if (e === 'gzip' || e === 'x-gzip') return createGunzip();
  if (e === 'deflate') return createInflate();
  if (e === 'br') return createBrotliDecompress();
  // An encoding we cannot decode is one we cannot scrub.
  // The value is the upstream's text: not repeated in our words.
  throw new AivaultError('UPSTREAM_ERROR', 'the upstream used a content-encoding aivault cannot decode, so it cannot scrub the answer');
}

/** How an exchange ended, for its allow record: the upstream's status and body size, if it got that far. */
export type Outcome = Pick<AuditOutcome, 'status' | 'bytesOut' | 'error'>;

/** Completes the allow record `seq` once, with the time since `started` and the request's size. */
export function outcomeRecorder(audit: AuditLog, seq: number, started: number, bytesIn: number): (outcome: Outcome) => void {
  let settled = false;
  return (o) => {
    if (settled) return;
    settled = true;
    const durationMs = Math.round(performance.now() - started);
    audit.complete(seq, { ...(o.status !== undefined ? { status: o.status } : {}), bytesIn, ...(o.bytesOut !== undefined ? { bytesOut: o.bytesOut } : {}), durationMs, ...(o.error ? { error: o.error } : {}) });
  };
}

export interface ResponseOptions {
  scrubber: Scrubber;
  /** The most decoded bytes the answer may hold. */
  limit: number;
  /** The caller reads the whole body before showing any (see InvokeContext.whole). */
  whole: boolean;
  /** The exchange's deadline: a stream failure after it is a timeout. */
  signal: AbortSignal;
  settle: (outcome: Outcome) => void;
}

export interface ScrubbedResponse {
  headers: Array<[string, string]>;
  /** Decoded, size-capped, scrubbed. */
  readonly body: Readable;
  /**
   * The whole body, scrubbed, for an answer small enough to read before any of it is shown
   * (`body` then reads from it): one scrub of the whole, no stream stages. Rejects as `done` does.
   */
  whole?: Promise<Buffer>;
  /** Settles when the body has been consumed (or failed), after its outcome is settled. */
  done: Promise<void>;
  /** Scrubs the rest of the body for more values (open-answers.ts). */
  widen(wider: Scrubber): void;
}

/**
 * Answers that declare at most this many bytes, unencoded, are read whole before any is shown,
 * sparing the stream stages (a fifth of a small answer's CPU). Such an answer nearly always
 * arrives in a read or two; one that trickles is held to its end, as a whole reader holds any.
 */
const WHOLE_MAX = 64 * 1024;

const tooLarge = (limit: number) => new AivaultError('RESPONSE_TOO_LARGE', `the response is larger than the limit of ${limit} bytes`);

/**
 * The upstream's answer as a caller may see it. A declared size over the limit, or an
 * encoding that cannot be decoded, is refused before any byte is read (and settled).
 */
export function scrubbedResponse(response: Dispatcher.ResponseData, o: ResponseOptions): ScrubbedResponse {
  const declared = Number(response.headers['content-length']);
  let decode: Transform | undefined;
  try {
    if (Number.isFinite(declared) && declared > o.limit) throw tooLarge(o.limit);
    assertPlainTransfer(oneValue(response.headers['transfer-encoding']));
    decode = decoder(oneValue(response.headers['content-encoding']));
  } catch (err) {
    // Discard the unread body; undici reports that as an abort, which is expected here.
    response.body.on('error', () => {}).destroy();
    o.settle({ error: (err as AivaultError).code });
    throw err;
  }
  const headers = responseHeaders(response.headers, o.scrubber);
  if (decode === undefined && Number.isFinite(declared) && declared <= WHOLE_MAX) return wholeResponse(response, headers, o);

  // Wired by hand rather than with stream.pipeline, which costs an AbortError per call.
  let bytesOut = 0;
  const scrubbed = o.scrubber.stream({ whole: o.whole, limit: o.limit, tooLarge: () => tooLarge(o.limit), onCount: (n) => (bytesOut = n) });
  const source = response.body as Readable;
  const stages: Array<Readable | Transform> = decode ? [source, decode, scrubbed] : [source, scrubbed];
  const done = new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err === undefined) {
        o.settle({ status: response.statusCode, bytesOut });
        return resolve();
      }
      const e = err instanceof AivaultError ? err : upstreamError(err, o.signal);
      o.settle({ status: response.statusCode, bytesOut, error: e.code });
      for (const stage of stages) stage.destroy(stage === scrubbed ? e : undefined);
      reject(e);
    };
    for (let i = 0; i < stages.length; i++) {
      stages[i]!.on('error', settle);
      if (i + 1 < stages.length) stages[i]!.pipe(stages[i + 1] as Transform);
    }
    scrubbed.on('finish', () => settle());
  });
  done.catch(() => {}); // observed through `body` errors; avoid an unhandled rejection
  return { headers, body: scrubbed, done, widen: (wider) => scrubbed.widen(wider) };
}

/** The whole body of an answer, read at once when it was small, else from its stream. */
export async function bodyOf(answer: { readonly body: Readable; whole?: Promise<Buffer> }): Promise<Buffer> {
  return (await answer.whole) ?? readAll(answer.body);
}

/**
 * A small answer (see WHOLE_MAX) read whole, then scrubbed once with every value it was
 * widened to by then; what a stream would release only at its end anyway.
 */
function wholeResponse(response: Dispatcher.ResponseData, headers: Array<[string, string]>, o: ResponseOptions): ScrubbedResponse {
  let scrubber = o.scrubber;
  const source = response.body as Readable;
  const whole = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytesOut = 0;
    let settled = false;
    const end = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err === undefined) {
        try {
          const body = scrubber.scrubBytes(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
          o.settle({ status: response.statusCode, bytesOut });
          return resolve(body);
        } catch (scrubFailed) {
          err = scrubFailed;
        }
      }
      const e = err instanceof AivaultError ? err : upstreamError(err, o.signal);
      source.destroy();
      o.settle({ status: response.statusCode, bytesOut, error: e.code });
      reject(e);
    };
    source.on('data', (chunk: Buffer) => {
      bytesOut += chunk.length;
      // The upstream's parser holds a body to its declared length; this holds it to the limit whatever it does.
      if (bytesOut > o.limit) return end(tooLarge(o.limit));
      chunks.push(chunk);
    });
    source.once('error', end);
    source.once('end', () => end());
    // Destroyed without an error (by whoever held `body`): an answer cut short all the same.
    source.once('close', () => settled || end(new Error('the answer was closed before its end')));
  });
  // Observed through `whole` or `body`, when anyone reads them: never an unhandled rejection.
  whole.catch(() => {});
  const done = whole.then(() => {});
  done.catch(() => {});
  let body: Readable | undefined;
  return {
    headers,
    whole,
    get body() {
      if (body) return body;
      const r = new Readable({
        read() {},
        destroy(err, cb) {
          source.destroy();
          cb(err);
        },
      });
      whole.then(
        (b) => {
          r.push(b);
          r.push(null);
        },
        (err: Error) => r.destroy(err),
      );
      return (body = r);
    },
    done,
    widen: (wider) => {
      if (!scrubber.covers(wider)) scrubber = scrubber.union(wider);
    },
  };
}
