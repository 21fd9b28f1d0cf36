// Removes secret values from what an upstream sends back. Each value is looked for in the
// forms it could be echoed in (raw, base64, base64url, URL- and form-encoded, JSON-escaped)
// and replaced by [REDACTED]. Streaming: a chunk is released at once except for a tail
// that could still be the start of a secret, so a match split across chunks is caught and
// a server-sent event is not held back waiting for the next one.

import { Transform, type TransformCallback } from 'node:stream';

export const REDACTED = '[REDACTED]';
/** Values shorter than this are not scrubbed: replacing every "ab" in a body would destroy it. */
export const MIN_SCRUB_LENGTH = 4;

export function secretForms(value: string): string[] {
  if (value.length < MIN_SCRUB_LENGTH) return [];
  const buf = Buffer.from(value, 'utf8');
  const forms = new Set<string>([
    value,
    buf.toString('base64'),
    buf.toString('base64').replace(/=+$/, ''),
    buf.toString('base64url'),
    encodeURIComponent(value),
    new URLSearchParams({ v: value }).toString().slice(2),
    JSON.stringify(value).slice(1, -1),
    JSON.stringify(value).slice(1, -1).replace(/\//g, '\\/'),
  ]);
  return [...forms].filter((f) => f.length >= MIN_SCRUB_LENGTH);
}

export class Scrubber {
  readonly #patterns: Buffer[];
  readonly #replacement = Buffer.from(REDACTED);

  constructor(values: Iterable<string>) {
    const forms = new Set<string>();
    for (const v of values) for (const f of secretForms(v)) forms.add(f);
    // Longest first, so a value and its own prefix both present redact the longer match.
    this.#patterns = [...forms].sort((a, b) => b.length - a.length).map((f) => Buffer.from(f, 'utf8'));
  }

  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /** One whole message (a WebSocket frame): every match replaced. */
  scrubBytes(buf: Buffer): Buffer {
    if (this.empty) return buf;
    return this.#replaceAll(buf);
  }

  scrubText(text: string): string {
    if (this.empty) return text;
    return this.#replaceAll(Buffer.from(text, 'utf8')).toString('utf8');
  }

  /** Leftmost-longest, non-overlapping matches as [start, end) pairs. */
  #findAll(buf: Buffer): Array<[number, number]> {
    const found: Array<[number, number]> = [];
    let pos = 0;
    for (;;) {
      let best = -1;
      let bestLen = 0;
      for (const p of this.#patterns) {
        const i = buf.indexOf(p, pos);
        if (i !== -1 && (best === -1 || i < best || (i === best && p.length > bestLen))) {
          best = i;
          bestLen = p.length;
        }
      }
      if (best === -1) return found;
      found.push([best, best + bestLen]);
      pos = best + bestLen;
    }
  }

  /** buf[0, upto) with the given matches (all ending by `upto`) replaced. */
  #apply(buf: Buffer, matches: ReadonlyArray<[number, number]>, upto: number): Buffer {
    if (matches.length === 0) return buf.subarray(0, upto);
    const parts: Buffer[] = [];
    let pos = 0;
    for (const [start, end] of matches) {
      parts.push(buf.subarray(pos, start), this.#replacement);
      pos = end;
    }
    parts.push(buf.subarray(pos, upto));
    return Buffer.concat(parts);
  }

  #replaceAll(buf: Buffer): Buffer {
    return this.#apply(buf, this.#findAll(buf), buf.length);
  }

  /** Length of the longest tail of `buf` that is a proper prefix of some pattern. */
  #holdback(buf: Buffer): number {
    let hold = 0;
    for (const p of this.#patterns) {
      const max = Math.min(p.length - 1, buf.length);
      for (let k = max; k > hold; k--) {
        if (buf[buf.length - k] === p[0] && buf.compare(p, 0, k, buf.length - k) === 0) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }

  /**
   * A transform that scrubs a byte stream, safe across chunk boundaries. With `limit`, it
   * also counts the bytes it is given and fails with `tooLarge()` once they pass it.
   */
  stream(options: { limit?: number; tooLarge?: () => Error; onCount?: (total: number) => void } = {}): Transform {
    let total = 0;
    const count = (chunk: Buffer): Error | undefined => {
      total += chunk.length;
      options.onCount?.(total);
      return options.limit !== undefined && total > options.limit ? (options.tooLarge?.() ?? new Error('too large')) : undefined;
    };
    if (this.empty) {
      return new Transform({ transform: (chunk: Buffer, _e, cb) => { const err = count(chunk); cb(err ?? null, err ? undefined : chunk); } });
    }
    let carry: Buffer = Buffer.alloc(0);
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        const tooLarge = count(chunk);
        if (tooLarge) return cb(tooLarge);
        const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
        // Hold back a tail that could still grow into a (longer) match, and never cut a match in two.
        const matches = this.#findAll(data);
        let cut = data.length - this.#holdback(data);
        const straddling = matches.find(([start, end]) => start < cut && end > cut);
        if (straddling) cut = straddling[0];
        const out = this.#apply(data, matches.filter(([, end]) => end <= cut), cut);
        carry = Buffer.from(data.subarray(cut));
        cb(null, out.length > 0 ? out : undefined);
      },
      flush: (cb: TransformCallback) => {
        cb(null, carry.length > 0 ? this.#replaceAll(carry) : undefined);
      },
    });
  }
}
