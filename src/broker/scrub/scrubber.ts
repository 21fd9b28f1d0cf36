// Removes secret values from everything an upstream sends back: header names and values,
// bodies as they stream, WebSocket messages, close reasons. What is looked for, in which
// views, is matcher.ts; how it is replaced is redactor.ts; this file decides *when* bytes
// go out, and the rule is the same everywhere: a fixed distance behind the input or a fixed
// time after arrival, whichever comes first, so no partial match ever holds anything back.
// docs/threat-model.md ("Response path") says what is covered and what is not.

import { Transform, type TransformCallback } from 'node:stream';
import { MIN_SCRUB_LENGTH, Patterns } from './matcher.ts';
import { Redactor } from './redactor.ts';

export { MIN_SCRUB_LENGTH } from './matcher.ts';
export { REDACTED } from './redactor.ts';

/**
 * The shortest value the scrubber can protect: shorter ones would match ordinary text (and
 * their base64 has too few characters of their own to look for). A credential bound to a
 * shorter secret needs the owner's explicit acknowledgement, and such a value is not scrubbed.
 */
export const MIN_SECRET_LENGTH = 8;

/**
 * When held bytes go out, besides the window (a fixed number of newer bytes): once the stream
 * has been quiet for IDLE_MS, and never later than MAX_HOLD_MS after they arrived. Both are
 * about time only, never content. A secret whose pieces arrive with a pause of IDLE_MS or
 * more between them, or over more than MAX_HOLD_MS in all, is found only in part; an event
 * that is followed by silence waits IDLE_MS, one in a steady stream at most MAX_HOLD_MS.
 */
export const IDLE_MS = 50;
export const MAX_HOLD_MS = 1000;

export interface Timing {
  /** Overrides IDLE_MS (tests and benchmarks). */
  idleMs?: number;
  /** Overrides MAX_HOLD_MS. */
  maxHoldMs?: number;
  /** The clock arrivals are timed by. */
  now?: () => number;
  /**
   * The reader shows nothing before the end (it renders or parses the whole body): no timed
   * release at all, so a secret that arrives slowly is still found whole.
   */
  whole?: boolean;
  /**
   * Whether more input may be waiting behind backpressure (the reader is slow, so the source
   * was paused): then the stream is not quiet, only stalled, and nothing is released on time.
   */
  busy?: () => boolean;
}

export interface StreamOptions extends Timing {
  /** Fails with `tooLarge()` once more than this many bytes have come in. */
  limit?: number;
  tooLarge?: () => Error;
  onCount?: (total: number) => void;
}

/** A scrubbed byte stream that can be told to look for more values. */
export type ScrubbedStream = Transform & { widen(wider: Scrubber): void };

/** Sends scrubbed WebSocket messages on, in order, each once it is safe to. */
export interface MessageScrubber {
  push(data: Buffer, binary: boolean): void;
  /** Scrubs from now on, held messages included, for `wider`'s values too. */
  widen(wider: Scrubber): void;
  /** What it scrubs for now (its first set, widened). */
  readonly current: Scrubber;
  /** Sends everything still held (before a close). */
  flush(): void;
  /** Stops the timer; nothing more is sent. */
  stop(): void;
}

/**
 * The timed releases of one stream: it learns when each piece arrived, and says up to which
 * offset bytes are due. A timer that fires looks again after pending I/O (setImmediate), so
 * an event loop that was busy does not pass for a quiet stream while data waits unread.
 */
class Schedule {
  readonly #idleMs: number;
  readonly #maxMs: number;
  readonly #now: () => number;
  readonly #due: (upto: number) => void;
  /** [end offset, arrival] of pieces not yet released. */
  readonly #pieces: Array<[number, number]> = [];
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires. */
  #timerAt = 0;
  #stopped = false;
  readonly #busy: () => boolean;

  constructor(timing: Timing, due: (upto: number) => void) {
    this.#busy = timing.busy ?? (() => false);
    this.#idleMs = timing.idleMs ?? IDLE_MS;
    this.#maxMs = timing.maxHoldMs ?? MAX_HOLD_MS;
    this.#now = timing.now ?? (() => performance.now());
    this.#due = due;
    this.#stopped = timing.whole === true;
  }

  arrived(end: number): void {
    if (this.#stopped) return;
    this.#last = this.#now();
    this.#pieces.push([end, this.#last]);
    this.#arm();
  }

  released(upto: number): void {
    while (this.#pieces.length > 0 && this.#pieces[0]![0] <= upto) this.#pieces.shift();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#stopped || this.#pieces.length === 0) return;
    const at = Math.min(this.#last + this.#idleMs, this.#pieces[0]![1] + this.#maxMs);
    // The due time only moves later as pieces arrive: a timer already armed fires in time,
    // and looks again then. Re-arming on every piece cost more than the scan of a small one.
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    // The time is read when the timer fires, before the loop polls for input; whether it was
    // quiet is decided after that poll. Input read in the poll arrived before the check, so the
    // stream was not quiet; a stall after the poll (other answers scrubbed, the thread
    // descheduled) is not quiet time either: read at the check, it had a key's first part
    // released while the rest waited unread at the socket.
    this.#timer = setTimeout(() => {
      const firedAt = this.#now();
      setImmediate(() => this.#fire(firedAt));
    }, Math.max(0, at - this.#now()));
  }

  #fire(firedAt: number): void {
    this.#timer = undefined;
    if (this.#stopped || this.#pieces.length === 0) return;
    if (this.#busy()) {
      // Input may be queued behind a slow reader: not quiet. Look again later.
      this.#last = this.#now();
      return this.#arm();
    }
    // A timer may fire a little before the clock we read says it is due.
    const now = firedAt + 1;
    let upto = -1;
    if (now - this.#last >= this.#idleMs) upto = this.#pieces.at(-1)![0];
    else for (const [end, at] of this.#pieces) if (at + this.#maxMs <= now) upto = end;
    if (upto >= 0) this.#due(upto);
    this.#arm();
  }
}

export class Scrubber {
  readonly #patterns: Patterns;
  /** The values looked for. */
  readonly values: ReadonlySet<string>;

  constructor(values: Iterable<string>) {
    const kept = new Set<string>();
    for (const v of values) if (Buffer.byteLength(v, 'utf8') >= MIN_SCRUB_LENGTH) kept.add(v);
    this.values = kept;
    this.#patterns = new Patterns([...kept].map((v) => Buffer.from(v, 'utf8')));
  }

  /** `r` scanning on for this scrubber's values; a new one from `at` when nothing was scanned for before. */
  #widened(r: Redactor | undefined, at: number): Redactor {
    if (!r) return new Redactor(this.#patterns, {}, at);
    r.widen(this.#patterns);
    return r;
  }

  /** Whether every value `other` looks for, this one does too. */
  covers(other: Scrubber): boolean {
    if (other === this) return true;
    for (const v of other.values) if (!this.values.has(v)) return false;
    return true;
  }

  /** A scrubber for the values of both. */
  union(other: Scrubber): Scrubber {
    return this.covers(other) ? this : other.covers(this) ? other : new Scrubber([...this.values, ...other.values]);
  }

  get empty(): boolean {
    return this.#patterns.empty;
  }

  /** How many bytes a stream holds back at most. */
  get window(): number {
    return this.#patterns.window;
  }

  /**
   * Pieces read as one text (so a secret split across them is found) and returned each on
   * its own, with the marker in every piece a match touches: header names and values.
   */
  scrubPieces(pieces: readonly Buffer[]): Buffer[] {
    if (this.empty) return [...pieces];
    const r = new Redactor(this.#patterns);
    try {
      for (const p of pieces) r.push(p);
      r.finish();
      let end = 0;
      return pieces.map((p) => r.take((end += p.length), 'clip'));
    } finally {
      r.close();
    }
  }

  /** Whether `text` (bytes, or a string as UTF-8) holds any of the values, in any form the scrubber would redact. */
  contains(text: string | Buffer): boolean {
    if (this.empty) return false;
    const m = this.#patterns.acquire();
    try {
      m.push(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
      m.finish();
      return m.spans.length > 0;
    } finally {
      this.#patterns.release(m);
    }
  }

  scrubBytes(buf: Buffer): Buffer {
    return this.scrubPieces([buf])[0]!;
  }

  scrubText(text: string): string {
    if (this.empty) return text;
    return this.scrubBytes(Buffer.from(text, 'utf8')).toString('utf8');
  }

  /**
   * A byte stream, scrubbed across chunk boundaries. `widen` makes it look for more values
   * from then on (an answer still streaming when its agent can reach a new secret).
   */
  stream(options: StreamOptions = {}): ScrubbedStream {
    let total = 0;
    let scrubber: Scrubber = this;
    // None while there is nothing to look for: bytes pass as they come.
    let r: Redactor | undefined = this.empty ? undefined : new Redactor(this.#patterns);
    let closed = false;
    const close = () => {
      closed = true;
      r?.close();
    };
    const release = (out: Buffer) => {
      schedule.released(r!.released);
      if (out.length > 0) t.push(out);
    };
    // Input queued on the writable side, or a full readable side (whose writer is then held
    // back), means the stream is stalled by its reader, not quiet.
    const busy = () => t.writableLength > 0 || t.readableLength >= t.readableHighWaterMark;
    const schedule = new Schedule({ ...options, busy: () => busy() || (options.busy?.() ?? false) }, (upto) => release(r!.take(upto, 'extend')));
    const t = new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        total += chunk.length;
        options.onCount?.(total);
        if (options.limit !== undefined && total > options.limit) return cb(options.tooLarge?.() ?? new Error('too large'));
        if (!r) return cb(null, chunk);
        let out: Buffer;
        try {
          r.push(chunk);
          out = r.take(r.offset - scrubber.window, 'extend');
        } catch (err) {
          return cb(err as Error); // a scrubber that fails ends the answer: nothing more goes out
        }
        schedule.released(r.released);
        schedule.arrived(r.offset);
        cb(null, out.length > 0 ? out : undefined);
      },
      flush: (cb: TransformCallback) => {
        schedule.stop();
        if (!r) {
          closed = true;
          return cb();
        }
        let out: Buffer;
        try {
          r.finish();
          out = r.take(r.offset, 'extend');
        } catch (err) {
          return cb(err as Error);
        }
        close();
        cb(null, out.length > 0 ? out : undefined);
      },
      destroy: (err, cb) => {
        schedule.stop();
        close();
        cb(err);
      },
    });
    return Object.assign(t, {
      widen(wider: Scrubber): void {
        if (closed || scrubber.covers(wider)) return;
        scrubber = scrubber.union(wider);
        try {
          r = scrubber.#widened(r, total);
        } catch (err) {
          close();
          t.destroy(err as Error);
        }
      },
    });
  }

  /**
   * WebSocket messages, scrubbed across message boundaries; `send` gets each whole. A
   * scrubber that fails stops (nothing more is sent) and tells `failed`.
   */
  messages(send: (data: Buffer, binary: boolean) => void, timing: Timing = {}, failed: (err: Error) => void = () => {}): MessageScrubber {
    let scrubber: Scrubber = this;
    // None while there is nothing to look for: messages pass as they come.
    let r: Redactor | undefined = this.empty ? undefined : new Redactor(this.#patterns);
    let total = 0;
    const queue: Array<{ end: number; binary: boolean }> = [];
    let stopped = false;
    const release = (upto: number) => {
      while (!stopped && queue.length > 0 && queue[0]!.end <= upto) {
        const m = queue.shift()!;
        send(r!.take(m.end, 'clip'), m.binary);
      }
      schedule.released(r!.released);
    };
    const schedule = new Schedule(timing, release);
    const stop = () => {
      stopped = true;
      schedule.stop();
      r?.close();
    };
    const guarded = (step: () => void) => {
      try {
        step();
      } catch (err) {
        stop();
        failed(err as Error);
      }
    };
    return {
      push: (data, binary) => {
        if (stopped) return;
        total += data.length;
        if (!r) return send(data, binary);
        guarded(() => {
          r!.push(data);
          queue.push({ end: r!.offset, binary });
          release(r!.offset - scrubber.window);
          schedule.arrived(r!.offset);
        });
      },
      widen: (wider) => {
        if (stopped || scrubber.covers(wider)) return;
        scrubber = scrubber.union(wider);
        guarded(() => (r = scrubber.#widened(r, total)));
      },
      get current() {
        return scrubber;
      },
      flush: () => {
        if (stopped) return;
        if (r) {
          schedule.stop();
          guarded(() => {
            r!.finish();
            release(r!.offset);
          });
        }
        stop();
      },
      stop,
    };
  }
}
