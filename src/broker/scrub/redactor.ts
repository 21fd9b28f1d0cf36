// The bytes between what has been released and what has been read, and the spans to
// replace in them. Where a release stops is the caller's choice (a fixed distance behind
// the input, a timer, a message's end): never the content's, so what the agent sees cannot
// tell it how much of a secret its own text matched. Only a complete match changes the
// output, and only into the marker.

import { Matcher, type MatcherOptions, type Patterns, type Span } from './matcher.ts';

export const REDACTED = '[REDACTED]';
const MARKER = Buffer.from(REDACTED);
const EMPTY = Buffer.alloc(0);

/** A closed redactor's matcher: every use throws. */
const CLOSED = new Proxy({} as Matcher, {
  get() {
    throw new Error('scrubber used after it was closed');
  },
});

export class Redactor {
  #matcher: Matcher;
  #patterns: Patterns;
  /** Raw bytes from `released` to the matcher's offset: the chunks as they came (not copied). */
  readonly #held: Buffer[] = [];
  /** How much of the first held chunk was released. */
  #skip = 0;
  #released = 0;

  /** `from`: the stream offset it starts at (a stream that had nothing to scrub until now). */
  constructor(patterns: Patterns, options: MatcherOptions = {}, from = 0) {
    this.#patterns = patterns;
    this.#matcher = options.reference === true ? new Matcher(patterns, options) : patterns.acquire();
    if (from > 0) {
      this.#matcher.startAt(from);
      this.#released = from;
    }
  }

  /**
   * Scans on for `patterns` (a wider set of needles): the bytes held, not released yet, are
   * read again by a matcher over it, and matches found so far are kept. What was released
   * stays released: widen before a new value can arrive, not after.
   */
  widen(patterns: Patterns): void {
    const old = this.#matcher;
    const next = patterns.acquire();
    next.startAt(this.#released);
    this.#held.forEach((chunk, i) => next.push(i === 0 ? chunk.subarray(this.#skip) : chunk));
    for (const span of old.spans) if (span.end > this.#released) next.spans.push(span);
    this.#matcher = next;
    this.#patterns.release(old);
    this.#patterns = patterns;
  }

  /**
   * Done: its matcher goes back to be reused. Using it after this throws (the matcher may
   * already scan another response), so a caller's mistake fails rather than mixes two scans.
   */
  close(): void {
    const m = this.#matcher;
    if (m === CLOSED) return;
    this.#matcher = CLOSED;
    this.#held.length = 0;
    this.#patterns.release(m);
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#matcher.offset;
  }

  get released(): number {
    return this.#released;
  }

  push(data: Uint8Array): void {
    this.#matcher.push(data);
    if (data.length > 0) this.#held.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Removes the next `n` held bytes; a copy only when they span chunks. */
  #release(n: number): Buffer {
    const head = this.#held[0]!;
    if (this.#skip + n < head.length) return head.subarray(this.#skip, (this.#skip += n));
    const parts: Buffer[] = [];
    while (n > 0) {
      const first = this.#held[0]!;
      const take = Math.min(n, first.length - this.#skip);
      parts.push(first.subarray(this.#skip, this.#skip + take));
      this.#skip += take;
      n -= take;
      if (this.#skip === first.length) {
        this.#held.shift();
        this.#skip = 0;
      }
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** No more input: decoders give up what they held, which may complete a match. */
  finish(): void {
    this.#matcher.finish();
  }

  /**
   * The scrubbed bytes from the last release up to `upto`. A match that straddles `upto` is
   * either released whole (`extend`, for a byte stream) or cut there (`clip`, for messages and
   * header values, whose ends are fixed): its marker then stands in both pieces.
   */
  take(upto: number, mode: 'extend' | 'clip'): Buffer {
    const spans = this.#matcher.spans;
    let end = Math.min(upto, this.offset);
    if (mode === 'extend' && spans.length > 0) {
      // In order of start, one pass follows a chain of overlapping matches to its end.
      spans.sort((x, y) => x.start - y.start);
      for (const s of spans) if (s.start < end && s.end > end) end = s.end;
    }
    if (end <= this.#released) return EMPTY;
    const from = this.#released;
    if (spans.length === 0) {
      this.#released = end;
      return this.#release(end - from);
    }
    const inRange: Span[] = [];
    const later: Span[] = [];
    for (const s of spans) {
      if (s.end <= from) continue;
      if (s.start < end) inRange.push(s);
      if (s.end > end) later.push(s);
    }
    spans.length = 0;
    spans.push(...later);
    const raw = this.#release(end - from);
    this.#released = end;
    if (inRange.length === 0) return raw.subarray(0, end - from);
    inRange.sort((a, b) => a.start - b.start);
    const merged: Array<[number, number]> = [];
    for (const s of inRange) {
      const a = Math.max(s.start, from);
      const b = Math.min(s.end, end);
      const last = merged.at(-1);
      if (last && a <= last[1]) last[1] = Math.max(last[1], b);
      else merged.push([a, b]);
    }
    const parts: Buffer[] = [];
    let pos = from;
    for (const [a, b] of merged) {
      parts.push(raw.subarray(pos - from, a - from), MARKER);
      pos = b;
    }
    parts.push(raw.subarray(pos - from, end - from));
    return Buffer.concat(parts);
  }
}
