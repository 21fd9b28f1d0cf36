// Finds secrets in a byte stream through normalising views instead of a list of pre-encoded
// copies. Views of the same bytes, each scanned by an automaton:
//   folded   the bytes as they are; percent-decoded; JSON-unescaped; HTML-unescaped
//            (./unescape.ts, one family each) -- then folded;
//   base64   JSON-unescaped, or percent-decoded, then whitespace dropped and the URL-safe
//            alphabet mapped to the standard one.
// Folding makes ASCII lower case, `+` a space, and drops line breaks and the `data:` field
// name that starts a server-sent-event line, so a case change, form encoding, line wrapping
// and a secret split over SSE events all meet the same needle. Hex is a needle in the folded
// views; base64 at any byte offset is three needles (one per alignment) of the characters
// that only the secret's bits decide. Every match becomes a raw span [start, end) to redact.

import { Automaton } from './automaton.ts';
import { MAX_ESCAPE_BYTES, Unescaper, type EscapeFamily, type SymbolSink } from './unescape.ts';

export interface Span {
  start: number;
  end: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SSE_FIELD = Uint8Array.from(Buffer.from('data:'));

/**
 * The folding stage of the literal and decoded views. After a line break it holds up to six
 * symbols back to see whether they are `data:` (and one space), which it drops.
 */
class Fold {
  readonly #sink: SymbolSink;
  #lineStart = false;
  readonly #held: number[] = [];

  constructor(sink: SymbolSink) {
    this.#sink = sink;
  }

  push(b: number, start: number, end: number): void {
    if (b === LF || b === CR) {
      this.#release();
      this.#lineStart = true;
      return;
    }
    if (!this.#lineStart) return this.#emit(b, start, end);
    const h = this.#held;
    const i = h.length / 3;
    if (i < SSE_FIELD.length ? (b | 0x20) === SSE_FIELD[i] : b === 0x20) {
      h.push(b, start, end);
      if (i < SSE_FIELD.length) return;
      h.length = 0; // `data: `
      this.#lineStart = false;
      return;
    }
    if (i === SSE_FIELD.length) h.length = 0; // `data:` without its space
    else this.#release();
    this.#lineStart = false;
    this.#emit(b, start, end);
  }

  finish(): void {
    this.#release();
  }

  #release(): void {
    const h = this.#held;
    for (let i = 0; i < h.length; i += 3) this.#emit(h[i]!, h[i + 1]!, h[i + 2]!);
    h.length = 0;
  }

  #emit(b: number, start: number, end: number): void {
    this.#sink(b === 0x2b ? 0x20 : b >= 0x41 && b <= 0x5a ? b | 0x20 : b, start, end);
  }
}

function foldBytes(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  const f = new Fold((b) => out.push(b));
  input.forEach((b, i) => f.push(b, i, i + 1));
  f.finish();
  return Uint8Array.from(out);
}

const B64 = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')) B64[c] = 1;

/** The base64 view's own mapping: whitespace dropped (-1), URL-safe letters made standard. */
function base64Symbol(b: number): number {
  if (b === 0x2d) return 0x2b;
  if (b === 0x5f) return 0x2f;
  if (b === 0x20 || b === 0x09 || b === LF || b === CR) return -1;
  return b;
}

/** The base64 characters fixed by the value's bits alone when it starts `k` bytes into a group of three. */
function base64Cores(value: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let k = 0; k < 3; k++) {
    const encoded = Buffer.from(Buffer.concat([Buffer.alloc(k), value]).toString('base64'));
    out.push(encoded.subarray(Math.ceil((8 * k) / 6), Math.floor((8 * (k + value.length)) / 6)));
  }
  return out;
}

/** Needles shorter than this would match ordinary text (a short base64 core is any word). */
const MIN_NEEDLE = 8;

export interface Needles {
  /** For the literal and decoded views. */
  folded: Uint8Array[];
  /** For the base64 view. */
  base64: Uint8Array[];
}

export function needlesFor(values: Iterable<Uint8Array>): Needles {
  const folded = new Map<string, Uint8Array>();
  const base64 = new Map<string, Uint8Array>();
  const add = (into: Map<string, Uint8Array>, n: Uint8Array) => {
    if (n.length > 0) into.set(Buffer.from(n).toString('latin1'), n);
  };
  for (const v of values) {
    add(folded, foldBytes(v));
    add(folded, Buffer.from(Buffer.from(v).toString('hex')));
    for (const core of base64Cores(v)) if (core.length >= MIN_NEEDLE) add(base64, core);
  }
  return { folded: [...folded.values()], base64: [...base64.values()] };
}

/** Symbol start offsets of the last few symbols of one view, for mapping a match back. */
class Ring {
  readonly #starts: Float64Array;
  readonly #ends: Float64Array;
  readonly #bytes: Uint8Array;
  readonly #mask: number;
  count = 0;

  constructor(length: number) {
    let size = 1;
    while (size < length + 2) size <<= 1;
    this.#starts = new Float64Array(size);
    this.#ends = new Float64Array(size);
    this.#bytes = new Uint8Array(size);
    this.#mask = size - 1;
  }

  push(b: number, start: number, end: number): void {
    this.#starts[this.count & this.#mask] = start;
    this.#ends[this.count & this.#mask] = end;
    this.#bytes[this.count & this.#mask] = b;
    this.count++;
  }

  /** The start of the symbol `back` symbols before the newest (0: the newest). */
  start(back: number): number {
    return this.#starts[(this.count - 1 - back) & this.#mask]!;
  }

  end(back: number): number {
    return this.#ends[(this.count - 1 - back) & this.#mask]!;
  }

  byte(back: number): number {
    return this.#bytes[(this.count - 1 - back) & this.#mask]!;
  }
}

/** One view's automaton state and recent symbols. */
class Scan {
  readonly #automaton: Automaton;
  readonly ring: Ring;
  #state = 0;

  constructor(automaton: Automaton) {
    this.#automaton = automaton;
    this.ring = new Ring(automaton.maxLength + 1);
  }

  /** Feeds one symbol; returns the length of the longest needle it completes (0: none). */
  step(b: number, start: number, end: number): number {
    this.ring.push(b, start, end);
    this.#state = this.#automaton.step(this.#state, b);
    return this.#automaton.found(this.#state);
  }
}

/** The compiled needles of one set of secret values, shared by every scan of them. */
export class Patterns {
  readonly folded: Automaton;
  readonly base64: Automaton;
  /**
   * How far back a match may start from the newest byte once it is found: the longest
   * needle at the widest escape per symbol, plus what the decoders hold back.
   */
  readonly window: number;

  constructor(needles: Needles) {
    this.folded = new Automaton(needles.folded);
    this.base64 = new Automaton(needles.base64);
    const longest = Math.max(this.folded.maxLength, this.base64.maxLength);
    this.window = longest === 0 ? 0 : longest * MAX_ESCAPE_BYTES + 8 * MAX_ESCAPE_BYTES;
  }

  get empty(): boolean {
    return this.folded.maxLength === 0 && this.base64.maxLength === 0;
  }
}

/** Scans a byte stream (fed in order, in any pieces) and collects the spans to redact. */
export class Matcher {
  /** Spans found, in the order found; the consumer removes what it has used. */
  readonly spans: Span[] = [];
  #offset = 0;
  readonly #literal: Fold;
  readonly #decoders: Unescaper[] = [];
  readonly #finishers: Array<() => void> = [];

  constructor(patterns: Patterns) {
    this.#literal = this.#folded(patterns);
    this.#finishers.push(() => this.#literal.finish());
    for (const family of ['percent', 'json', 'html'] as const) {
      const fold = this.#folded(patterns);
      const base64 = family === 'html' ? undefined : this.#base64(patterns);
      this.#decoder(family, (b, start, end) => {
        fold.push(b, start, end);
        base64?.(b, start, end);
      });
      this.#finishers.push(() => fold.finish());
    }
  }

  #decoder(family: EscapeFamily, sink: SymbolSink): void {
    const u = new Unescaper(family, sink);
    this.#decoders.push(u);
    this.#finishers.unshift(() => u.finish());
  }

  /** A folding view: every needle it completes becomes a span. */
  #folded(patterns: Patterns): Fold {
    const scan = new Scan(patterns.folded);
    return new Fold((b, start, end) => {
      const length = scan.step(b, start, end);
      if (length > 0) this.spans.push({ start: scan.ring.start(length - 1), end });
    });
  }

  /** A base64 view over decoded symbols. */
  #base64(patterns: Patterns): SymbolSink {
    const scan = new Scan(patterns.base64);
    /** A match whose right neighbour (it may carry the secret's last bits) has not arrived. */
    let openRight: Span | undefined;
    return (b, start, end) => {
      const s = base64Symbol(b);
      if (s < 0) return;
      if (openRight) {
        if (B64[s] && start === openRight.end) openRight.end = end;
        openRight = undefined;
      }
      const length = scan.step(s, start, end);
      if (length === 0) return;
      // One character either side may share bits with the secret: it goes too, when it
      // stands right next to the match (not across a space or a line break).
      const ring = scan.ring;
      const before = length < ring.count && B64[ring.byte(length)] && ring.end(length) === ring.start(length - 1) ? length : length - 1;
      openRight = { start: ring.start(before), end };
      this.spans.push(openRight);
    };
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#offset;
  }

  push(data: Uint8Array): void {
    let pos = this.#offset;
    const literal = this.#literal;
    const [percent, json, html] = this.#decoders as [Unescaper, Unescaper, Unescaper];
    for (let i = 0; i < data.length; i++, pos++) {
      const b = data[i]!;
      literal.push(b, pos, pos + 1);
      percent.push(b, pos);
      json.push(b, pos);
      html.push(b, pos);
    }
    this.#offset = pos;
  }

  /** The end of the input: decoders give up what they held, then the folds. */
  finish(): void {
    for (const f of this.#finishers) f();
  }
}
