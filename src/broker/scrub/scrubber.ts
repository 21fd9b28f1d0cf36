// Removes secret values from everything an upstream sends back: header names and values,
// bodies as they stream, WebSocket messages, close reasons. What is looked for, in which
// views, is matcher.ts; how it is replaced is redactor.ts; this file decides *when* bytes
// go out, and the rule is the same everywhere: a fixed distance behind the input or a fixed
// time after arrival, whichever comes first, so no partial match ever holds anything back.
// docs/threat-model.md ("Response path") says what is covered and what is not.

import { Transform, type TransformCallback } from 'node:stream';
import { Patterns } from './matcher.ts';
import { Redactor } from './redactor.ts';

export { REDACTED } from './redactor.ts';

/**
 * The shortest value the scrubber can protect: shorter ones would match ordinary text (and
 * their base64 has too few characters of their own to look for). A credential bound to a
 * shorter secret needs the owner's explicit acknowledgement, and such a value is not scrubbed.
 */
export const MIN_SECRET_LENGTH = 8;

/** Values shorter than this are not looked for at all: replacing every "ab" would destroy a body. */
export const MIN_SCRUB_LENGTH = 4;

/**
 * How long a byte may be held back waiting for what follows it. It bounds the latency the
 * scrubber adds to a server-sent event or a WebSocket message; a secret split over two
 * pieces that arrive further apart than this is not seen whole.
 */
export const HOLD_MS = 50;

export interface StreamOptions {
  /** Fails with `tooLarge()` once more than this many bytes have come in. */
  limit?: number;
  tooLarge?: () => Error;
  onCount?: (total: number) => void;
  /** Overrides HOLD_MS (tests and benchmarks). */
  holdMs?: number;
  /** The clock arrivals are timed by (tests drive it with mocked timers). */
  now?: () => number;
}

/** Sends scrubbed WebSocket messages on, in order, each once it is safe to. */
export interface MessageScrubber {
  push(data: Buffer, binary: boolean): void;
  /** Sends everything still held (before a close). */
  flush(): void;
  /** Stops the timer; nothing more is sent. */
  stop(): void;
}

export class Scrubber {
  readonly #patterns: Patterns;

  constructor(values: Iterable<string>) {
    const protectable: Buffer[] = [];
    for (const v of values) {
      const bytes = Buffer.from(v, 'utf8');
      if (bytes.length >= MIN_SCRUB_LENGTH) protectable.push(bytes);
    }
    this.#patterns = new Patterns(protectable);
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
    for (const p of pieces) r.push(p);
    r.finish();
    let end = 0;
    return pieces.map((p) => r.take((end += p.length), 'clip'));
  }

  scrubBytes(buf: Buffer): Buffer {
    return this.scrubPieces([buf])[0]!;
  }

  scrubText(text: string): string {
    if (this.empty) return text;
    return this.scrubBytes(Buffer.from(text, 'utf8')).toString('utf8');
  }

  /** A byte stream, scrubbed across chunk boundaries. */
  stream(options: StreamOptions = {}): Transform {
    let total = 0;
    const count = (chunk: Buffer): Error | undefined => {
      total += chunk.length;
      options.onCount?.(total);
      return options.limit !== undefined && total > options.limit ? (options.tooLarge?.() ?? new Error('too large')) : undefined;
    };
    if (this.empty) {
      return new Transform({ transform: (chunk: Buffer, _e, cb) => { const err = count(chunk); cb(err ?? null, err ? undefined : chunk); } });
    }
    const r = new Redactor(this.#patterns);
    const window = this.window;
    const now = options.now ?? (() => performance.now());
    const held = new Held(options.holdMs ?? HOLD_MS);
    let timer: NodeJS.Timeout | undefined;
    const schedule = () => {
      if (timer !== undefined || held.empty) return;
      timer = setTimeout(() => {
        timer = undefined;
        const out = r.take(held.due(now()), 'extend');
        if (out.length > 0) t.push(out);
        held.drop(r.released);
        schedule();
      }, held.wait(now()));
    };
    const t = new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        const tooLarge = count(chunk);
        if (tooLarge) return cb(tooLarge);
        r.push(chunk);
        held.add(r.offset, now());
        const out = r.take(r.offset - window, 'extend');
        held.drop(r.released);
        schedule();
        cb(null, out.length > 0 ? out : undefined);
      },
      flush: (cb: TransformCallback) => {
        clearTimeout(timer);
        r.finish();
        const out = r.take(r.offset, 'extend');
        cb(null, out.length > 0 ? out : undefined);
      },
      destroy: (err, cb) => {
        clearTimeout(timer);
        cb(err);
      },
    });
    return t;
  }

  /** WebSocket messages, scrubbed across message boundaries; `send` gets each whole. */
  messages(send: (data: Buffer, binary: boolean) => void, options: Pick<StreamOptions, 'holdMs' | 'now'> = {}): MessageScrubber {
    if (this.empty) return { push: send, flush() {}, stop() {} };
    const r = new Redactor(this.#patterns);
    const holdMs = options.holdMs ?? HOLD_MS;
    const clock = options.now ?? (() => performance.now());
    const queue: Array<{ end: number; binary: boolean; arrived: number }> = [];
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const release = (upto: number) => {
      while (queue.length > 0 && queue[0]!.end <= upto) {
        const m = queue.shift()!;
        send(r.take(m.end, 'clip'), m.binary);
      }
    };
    const schedule = () => {
      if (timer !== undefined || queue.length === 0 || stopped) return;
      timer = setTimeout(() => {
        timer = undefined;
        const now = clock();
        let due = -1;
        for (const m of queue) if (m.arrived + holdMs <= now + 1) due = m.end;
        release(due);
        schedule();
      }, Math.max(0, queue[0]!.arrived + holdMs - clock()));
    };
    return {
      push: (data, binary) => {
        if (stopped) return;
        r.push(data);
        queue.push({ end: r.offset, binary, arrived: clock() });
        release(r.offset - this.window);
        schedule();
      },
      flush: () => {
        if (stopped) return;
        clearTimeout(timer);
        timer = undefined;
        r.finish();
        release(r.offset);
      },
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }
}

/** When each received byte is due out: a fixed time after it arrived. */
class Held {
  readonly #holdMs: number;
  /** [end offset, arrival time] of each chunk not yet wholly released. */
  readonly #chunks: Array<[number, number]> = [];

  constructor(holdMs: number) {
    this.#holdMs = holdMs;
  }

  get empty(): boolean {
    return this.#chunks.length === 0;
  }

  add(end: number, at: number): void {
    this.#chunks.push([end, at]);
  }

  /** Forgets chunks released up to `released`. */
  drop(released: number): void {
    while (this.#chunks.length > 0 && this.#chunks[0]![0] <= released) this.#chunks.shift();
  }

  /** The offset up to which bytes are due at `now`. */
  due(now: number): number {
    let upto = 0;
    // A timer may fire a little before the clock we read says it is due.
    for (const [end, at] of this.#chunks) if (at + this.#holdMs <= now + 1) upto = end;
    return upto;
  }

  /** Milliseconds until the oldest held chunk is due. */
  wait(now: number): number {
    return Math.max(0, this.#chunks[0]![1] + this.#holdMs - now);
  }
}
