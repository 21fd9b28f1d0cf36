// The response stage, the trust boundary of every answer (invokes and flows alike): the
// upstream's body decoded, size-capped after decoding, scrubbed, and the allow record's
// outcome settled once, whichever way the exchange ends.

import { PassThrough, Readable, type Transform } from 'node:stream';
import { promisify } from 'node:util';
import { brotliDecompress, createBrotliDecompress, createGunzip, createInflate, gunzip, inflate } from 'node:zlib';
import type { Dispatcher } from 'undici';
import type { AuditLog } from '../audit/log.ts';
import { AivaultError } from '../errors.ts';
import type { AuditOutcome } from '../storage/types.ts';
import { responseHeaders } from './response-headers.ts';
import { IDLE_MS, type Scrubber } from './scrub/scrubber.ts';
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

/** How to undo each content-encoding we accept: as a stream, and all at once for a small answer. */
interface Decoder {
  stream(): Transform;
  whole(raw: Buffer, options: { maxOutputLength: number }): Promise<Buffer>;
}

const GZIP: Decoder = { stream: () => createGunzip(), whole: promisify(gunzip) };
const DECODERS = new Map<string, Decoder>([
  ['gzip', GZIP],
  ['x-gzip', GZIP],
  ['deflate', { stream: () => createInflate(), whole: promisify(inflate) }],
  ['br', { stream: () => createBrotliDecompress(), whole: promisify(brotliDecompress) }],
]);

function decoder(encoding: string | undefined): Decoder | undefined {
  const e = (encoding ?? 'identity').trim().toLowerCase();
  if (e === '' || e === 'identity') return undefined;
  const found = DECODERS.get(e);
  if (found) return found;
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
   * For an answer small enough to read before any of it is shown: the whole body, scrubbed
   * once, no stream stages (`body` then reads from it); undefined when it decoded to more than
   * is held at once, and is read from `body` after all. Rejects as `done` does.
   */
  whole?: Promise<Buffer | undefined>;
  /** Settles when the body has been consumed (or failed), after its outcome is settled. */
  done: Promise<void>;
  /** Scrubs the rest of the body for more values (open-answers.ts). */
  widen(wider: Scrubber): void;
}

/**
 * Answers that declare at most this many bytes are read whole before any is shown, sparing
 * the stream stages (a fifth of a small answer's CPU). Such an answer nearly always arrives in
 * a read or two; one that trickles is held to its end, as a whole reader holds any. One that
 * declares no size is read whole only until it passes this size or WHOLE_WAIT_MS.
 */
const WHOLE_MAX = 64 * 1024;
/**
 * The most a whole answer decodes to in one buffer. A compressed answer may decode to a
 * thousand times its size: past this, it is decoded again as a stream, so a reader that
 * streams never holds more than this of one answer at once, and no single scrub holds the
 * event loop longer than a streamed chunk's (an attacker's escape-dense 480 KB held it 150 ms).
 */
const WHOLE_DECODED_MAX = WHOLE_MAX;

/**
 * How long an answer that declares no size (chunked, or closed at its end) is waited for
 * whole before it goes on as a stream: the stream's own idle wait, so a slow answer's first
 * bytes are late by no more than a quiet stream's would be.
 */
const WHOLE_WAIT_MS = IDLE_MS;

/** Media types that are streams by design: each event goes out as it comes, never waited for whole. */
const STREAMING_TYPES = new Set(['text/event-stream', 'application/x-ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/json-seq', 'multipart/x-mixed-replace']);
const streamsByDesign = (contentType: string | undefined) => STREAMING_TYPES.has((contentType ?? '').split(';')[0]!.trim().toLowerCase());

const tooLarge = (limit: number) => new AivaultError('RESPONSE_TOO_LARGE', `the response is larger than the limit of ${limit} bytes`);

/**
 * The upstream's answer as a caller may see it. A declared size over the limit, or an
 * encoding that cannot be decoded, is refused before any byte is read (and settled).
 */
export function scrubbedResponse(response: Dispatcher.ResponseData, o: ResponseOptions): ScrubbedResponse {
  const declared = Number(response.headers['content-length']);
  let decode: Decoder | undefined;
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
  const answer = { source: response.body as Readable, status: response.statusCode, headers, decode };
  if (Number.isFinite(declared)) return declared <= WHOLE_MAX ? wholeResponse(answer, o, true) : streamedResponse(answer, o);
  return streamsByDesign(oneValue(response.headers['content-type'])) ? streamedResponse(answer, o) : wholeResponse(answer, o, false);
}

/** An upstream answer on its way through: its body as received, and how to decode it. */
interface Answer {
  source: Readable;
  status: number;
  headers: Array<[string, string]>;
  decode: Decoder | undefined;
}

/** The answer decoded, capped and scrubbed as it streams. */
function streamedResponse(a: Answer, o: ResponseOptions): ScrubbedResponse {
  // Wired by hand rather than with stream.pipeline, which costs an AbortError per call.
  let bytesOut = 0;
  const decode = a.decode?.stream();
  // A decoder works on the thread pool, so what it holds reaches the scrubber a turn or more
  // later: while it holds input the answer is not quiet (taken for quiet, a stalled loop or a
  // full pool had a key's first part released).
  const decoding = decode && (() => decode.writableLength > 0 || decode.readableLength > 0);
  const scrubbed = o.scrubber.stream({ whole: o.whole, limit: o.limit, tooLarge: () => tooLarge(o.limit), onCount: (n) => (bytesOut = n), ...(decoding ? { busy: decoding } : {}) });
  const stages: Array<Readable | Transform> = decode ? [a.source, decode, scrubbed] : [a.source, scrubbed];
  const done = new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err === undefined) {
        o.settle({ status: a.status, bytesOut });
        return resolve();
      }
      const e = err instanceof AivaultError ? err : upstreamError(err, o.signal);
      o.settle({ status: a.status, bytesOut, error: e.code });
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
  return { headers: a.headers, body: scrubbed, done, widen: (wider) => scrubbed.widen(wider) };
}

/** The whole body of an answer, read at once when it was small, else from its stream. */
export async function bodyOf(answer: { readonly body: Readable; whole?: Promise<Buffer | undefined> }): Promise<Buffer> {
  return (await answer.whole) ?? readAll(answer.body);
}

const outgrew = (err: unknown) => (err as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE';

/**
 * A small answer read whole, decoded at once, then scrubbed once with every value it was
 * widened to by then; what a stream would release only at its end anyway. It goes on as a
 * stream (from the bytes received, or with them put back) when it decodes to more than
 * WHOLE_DECODED_MAX, or, having declared no size, when it passes WHOLE_MAX or WHOLE_WAIT_MS.
 */
function wholeResponse(a: Answer, o: ResponseOptions, declared: boolean): ScrubbedResponse {
  let scrubber = o.scrubber;
  let streamed: ScrubbedResponse | undefined;
  const whole = new Promise<Buffer | undefined>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let bytesOut = 0;
    let settled = false;
    const asStream = (source: Readable) => {
      streamed = streamedResponse({ ...a, source }, { ...o, scrubber });
      resolve(undefined);
    };
    const fail = (err: unknown) => {
      const e = err instanceof AivaultError ? err : upstreamError(err, o.signal);
      a.source.destroy();
      o.settle({ status: a.status, bytesOut, error: e.code });
      reject(e);
    };
    // One chunk as it is (Buffer.concat would copy it).
    const joined = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    const end = async () => {
      const raw = joined();
      let body = raw;
      if (a.decode) {
        try {
          body = await a.decode.whole(raw, { maxOutputLength: Math.min(o.limit, WHOLE_DECODED_MAX) });
        } catch (err) {
          if (!outgrew(err)) return fail(err);
          if (o.limit <= WHOLE_DECODED_MAX) return fail(tooLarge(o.limit));
          return asStream(Readable.from([raw], { objectMode: false }));
        }
      }
      bytesOut = body.length;
      try {
        const scrubbed = scrubber.scrubBytes(body);
        o.settle({ status: a.status, bytesOut });
        resolve(scrubbed);
      } catch (scrubFailed) {
        fail(scrubFailed);
      }
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      // What the record counts is decoded bytes: these are, unless there is a decoding to come.
      if (!a.decode) bytesOut = received;
      // The upstream's parser holds a body to its declared length; this holds it to the limit whatever it does.
      if (received > o.limit) return stop(tooLarge(o.limit));
      chunks.push(chunk);
      if (!declared && received > WHOLE_MAX) goOn();
    };
    const onEnd = () => stop();
    // Destroyed without an error (by whoever held `body`): an answer cut short all the same.
    const onClose = () => settled || stop(new Error('the answer was closed before its end'));
    /** Whether this caller is the one that decides how the answer goes on (read whole, failed, or streamed). */
    const claim = () => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      return true;
    };
    const stop = (err?: unknown) => {
      if (!claim()) return;
      if (err === undefined) void end();
      else fail(err);
    };
    // Large or slow after all: the bytes read so far go back in front of the rest, which streams.
    const goOn = () => {
      if (!claim()) return;
      a.source.pause();
      a.source.off('data', onData).off('error', stop).off('end', onEnd).off('close', onClose);
      if (received > 0) a.source.unshift(joined());
      asStream(a.source);
    };
    const timer = declared ? undefined : setTimeout(goOn, WHOLE_WAIT_MS);
    a.source.on('data', onData).once('error', stop).once('end', onEnd).once('close', onClose);
  });
  // Observed through `whole` or `body`, when anyone reads them: never an unhandled rejection.
  whole.catch(() => {});
  const done = whole.then((b) => (b ? undefined : streamed!.done));
  done.catch(() => {});
  let body: Readable | undefined;
  return {
    headers: a.headers,
    whole,
    get body() {
      return (body ??= wholeBody(whole, () => streamed, a.source));
    },
    done,
    widen: (wider) => {
      if (streamed) streamed.widen(wider);
      else if (!scrubber.covers(wider)) scrubber = scrubber.union(wider);
    },
  };
}

/** `body` of a whole answer: its buffer, or the stream it went on as; destroying it stops the upstream's. */
function wholeBody(whole: Promise<Buffer | undefined>, streamed: () => ScrubbedResponse | undefined, source: Readable): Readable {
  let from: Readable | undefined;
  const r = new PassThrough({
    destroy(err, cb) {
      source.destroy();
      from?.destroy();
      cb(err);
    },
  });
  whole.then(
    (b) => {
      if (b) return void r.end(b);
      from = streamed()!.body;
      from.once('error', (err) => r.destroy(err)).pipe(r);
    },
    (err: Error) => r.destroy(err),
  );
  return r;
}
