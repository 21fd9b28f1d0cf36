// Finds secrets in a byte stream through normalising views instead of a list of pre-encoded
// copies. Four views of the same bytes: as they are, percent-decoded, JSON-unescaped and
// HTML-unescaped (./unescape.ts, one family each). Each view is folded into a small alphabet
// and scanned by one automaton holding every needle:
//   folding  ASCII lower case; `+` and `-` as a space, `_` as `/` (so form encoding and both
//            base64 alphabets meet); line breaks dropped, and the `data:` field name that
//            starts a server-sent-event line (so wrapped text and a secret split over SSE
//            events meet the same needle);
//   needles  the secret itself, its hex, its UTF-16 (either byte order), and its base64 at
//            each of the three byte offsets (only the characters the secret's bits alone
//            decide), all folded the same way.
// Folding only ever merges characters, so it can redact more than a secret (a case variant),
// never less. Every match becomes a raw span [start, end) to redact.

import { Automaton } from './automaton.ts';
import { MAX_ESCAPE_BYTES, Unescaper, type EscapeFamily, type SymbolSink } from './unescape.ts';

export interface Span {
  start: number;
  end: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SSE_FIELD = Uint8Array.from(Buffer.from('data:'));

/** The folded alphabet, per byte (line breaks are handled before it). */
const FOLD = new Uint8Array(256);
for (let b = 0; b < 256; b++) FOLD[b] = b === 0x2b || b === 0x2d ? 0x20 : b === 0x5f ? 0x2f : b >= 0x41 && b <= 0x5a ? b | 0x20 : b;

/** The base64 alphabets (standard and URL-safe), unfolded. */
const B64 = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_')) B64[c] = 1;

/**
 * The folding stage's memory: after a line break it holds up to six symbols back to see
 * whether they are `data:` (and one space), which it drops. Everything else passes at once.
 */
class FoldState {
  lineStart = false;
  /** Held symbols: byte, start, end. */
  held: number[] = [];

  copyFrom(o: FoldState): void {
    this.lineStart = o.lineStart;
    this.held = [...o.held];
  }

  /** Feeds one symbol; `emit` gets what passes (unfolded), now or once the prefix is decided. */
  push(b: number, start: number, end: number, emit: SymbolSink): void {
    if (b === LF || b === CR) {
      this.release(emit);
      this.lineStart = true;
      return;
    }
    if (!this.lineStart) return emit(b, start, end);
    const h = this.held;
    const i = h.length / 3;
    if (i < SSE_FIELD.length ? (b | 0x20) === SSE_FIELD[i] : b === 0x20) {
      h.push(b, start, end);
      if (i < SSE_FIELD.length) return;
      h.length = 0; // `data: `
      this.lineStart = false;
      return;
    }
    if (i === SSE_FIELD.length) h.length = 0; // `data:` without its space
    else this.release(emit);
    this.lineStart = false;
    emit(b, start, end);
  }

  release(emit: SymbolSink): void {
    const h = this.held;
    this.held = [];
    for (let i = 0; i < h.length; i += 3) emit(h[i]!, h[i + 1]!, h[i + 2]!);
  }
}

/** What the views make of `input` on its own, folded: the needle for a value. */
function folded(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  const f = new FoldState();
  const emit = (b: number) => void out.push(FOLD[b]!);
  input.forEach((b, i) => f.push(b, i, i + 1, emit));
  f.release(emit);
  return Uint8Array.from(out);
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
/** Tags: a base64 core also takes the characters either side that share bits with the secret. */
const TAG_BASE64 = 1;
const TAG_HEX = 2;
const TAG_UTF16 = 3;

/**
 * The value as UTF-16, little- and big-endian: what an answer declared as `charset=utf-16`
 * (or a JSON `\u0000`-padded rendering of one) holds of it.
 */
function utf16Forms(value: Uint8Array): Uint8Array[] {
  const le = Buffer.from(Buffer.from(value).toString('utf8'), 'utf16le');
  return [le, Buffer.from(le).swap16()];
}

/**
 * The most raw bytes one symbol of each form takes in what honest services send: a secret's
 * own characters may each be an HTML or JSON escape; base64 characters at most a percent
 * escape (and a line break now and then); hex digits are never escaped.
 */
const WIDEST: Record<number, number> = { 0: MAX_ESCAPE_BYTES, [TAG_BASE64]: 3, [TAG_HEX]: 1, [TAG_UTF16]: 1 };

/** The compiled needles of one set of secret values, shared by every scan of them. */
export class Patterns {
  readonly automaton: Automaton;
  /**
   * How far back a match may start from the newest byte once it is found: each needle at
   * the widest its form is ever written, plus what the decoders and folding hold back.
   */
  readonly window: number;
  /** After this many plain symbols a decoded view sees what the literal one sees again. */
  readonly resync: number;

  constructor(values: Iterable<Uint8Array>) {
    const needles = new Map<string, { bytes: Uint8Array; tag: number }>();
    const add = (bytes: Uint8Array, tag: number) => {
      const key = Buffer.from(bytes).toString('latin1');
      if (bytes.length > 0 && !needles.has(key)) needles.set(key, { bytes, tag });
    };
    for (const v of values) {
      add(folded(v), 0);
      add(folded(Buffer.from(Buffer.from(v).toString('hex'))), TAG_HEX);
      for (const core of base64Cores(v)) if (core.length >= MIN_NEEDLE) add(folded(core), TAG_BASE64);
      for (const wide of utf16Forms(v)) add(folded(wide), TAG_UTF16);
    }
    const list = [...needles.values()];
    this.automaton = new Automaton(list.map((n) => n.bytes), list.map((n) => n.tag));
    const longest = this.automaton.maxLength;
    this.window = longest === 0 ? 0 : Math.max(...list.map((n) => n.bytes.length * WIDEST[n.tag]!)) + 8 * MAX_ESCAPE_BYTES;
    this.resync = longest + 8;
  }

  get empty(): boolean {
    return this.automaton.maxLength === 0;
  }
}

/**
 * One view's scan: folding, the automaton's state, and the raw spans and bytes of its last
 * symbols (a match is mapped back through them). A view can be copied into another.
 */
class View {
  readonly automaton: Automaton;
  readonly fold = new FoldState();
  state = 0;
  count = 0;
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  readonly bytes: Uint8Array;
  readonly mask: number;
  /** A base64 match whose right neighbour (it may carry the secret's last bits) has not arrived. */
  openRight: Span | undefined;
  readonly #spans: Span[];
  /** The folding stage's output: one symbol into the automaton. */
  readonly emit: SymbolSink;

  constructor(automaton: Automaton, spans: Span[]) {
    this.automaton = automaton;
    this.#spans = spans;
    let size = 1;
    while (size < automaton.maxLength + 2) size <<= 1;
    this.starts = new Float64Array(size);
    this.ends = new Float64Array(size);
    this.bytes = new Uint8Array(size);
    this.mask = size - 1;
    this.emit = (b, start, end) => this.step(b, start, end);
  }

  push(b: number, start: number, end: number): void {
    this.fold.push(b, start, end, this.emit);
  }

  /**
   * The common case, kept small for the hot loop: the raw byte at `pos` folds to one symbol
   * that completes no needle. Returns false, having done nothing, for anything else.
   */
  fast(b: number, pos: number): boolean {
    const a = this.automaton;
    const next = a.next[this.state * a.columns + a.column[FOLD[b]!]!]!;
    if (a.found[next] !== 0 || b === LF || b === CR || this.fold.lineStart || this.openRight !== undefined) return false;
    const k = this.count++ & this.mask;
    this.starts[k] = pos;
    this.ends[k] = pos + 1;
    this.bytes[k] = b;
    this.state = next;
    return true;
  }

  step(b: number, start: number, end: number): void {
    if (this.openRight) {
      if (B64[b] && start === this.openRight.end) this.openRight.end = end;
      this.openRight = undefined;
    }
    const i = this.count++ & this.mask;
    this.starts[i] = start;
    this.ends[i] = end;
    this.bytes[i] = b;
    const a = this.automaton;
    this.state = a.next[this.state * a.columns + a.column[FOLD[b]!]!]!;
    const length = a.found[this.state]!;
    if (length > 0) this.#found(length, end);
  }

  #found(length: number, end: number): void {
    const back = (n: number) => (this.count - 1 - n) & this.mask;
    let first = back(length - 1);
    if (this.automaton.tag[this.state] === TAG_BASE64) {
      // One character either side may share bits with the secret: it goes too, when it
      // stands right next to the match (not across a space or a line break).
      const before = back(length);
      if (length < this.count && B64[this.bytes[before]!] && this.ends[before] === this.starts[first]) first = before;
      this.openRight = { start: this.starts[first]!, end };
      this.#spans.push(this.openRight);
      return;
    }
    this.#spans.push({ start: this.starts[first]!, end });
  }

  copyFrom(o: View): void {
    this.state = o.state;
    this.count = o.count;
    this.starts.set(o.starts);
    this.ends.set(o.ends);
    this.bytes.set(o.bytes);
    this.fold.copyFrom(o.fold);
    this.openRight = o.openRight;
  }
}

const INTRODUCERS: Record<EscapeFamily, number> = { percent: 0x25, json: 0x5c, html: 0x26 };
const INTRODUCER = new Uint8Array(256);
for (const b of Object.values(INTRODUCERS)) INTRODUCER[b] = 1;

/**
 * A decoded view (one escape family). Where the text has none of its escapes it would see
 * exactly what the literal view sees, so it sleeps there: it wakes at its family's
 * introducer (`%`, `\`, `&`) as a copy of the literal view, and sleeps again once its last
 * `resync` symbols were plain.
 */
class DecodedView {
  awake = false;
  readonly introducer: number;
  readonly decoder: Unescaper;
  readonly view: View;
  #plain = 0;

  constructor(family: EscapeFamily, automaton: Automaton, spans: Span[]) {
    this.introducer = INTRODUCERS[family];
    const view = (this.view = new View(automaton, spans));
    this.decoder = new Unescaper(family, (b, start, end) => {
      // A symbol for one raw byte is that byte: the literal view got the same one.
      this.#plain = end - start === 1 ? this.#plain + 1 : 0;
      view.push(b, start, end);
    });
  }

  push(b: number, pos: number): void {
    // Outside an escape, a plain byte is the literal view's symbol: the short way.
    if (b !== this.introducer && this.decoder.idle && this.view.fast(b, pos)) {
      this.#plain++;
      return;
    }
    this.decoder.push(b, pos);
  }

  wake(literal: View): void {
    this.awake = true;
    this.#plain = 0;
    this.view.copyFrom(literal);
  }

  /** Whether it may sleep: nothing pending and only plain symbols for long enough. */
  settled(resync: number): boolean {
    return this.#plain >= resync && this.decoder.idle;
  }
}

/** Scans a byte stream (fed in order, in any pieces) and collects the spans to redact. */
export class Matcher {
  /** Spans found, in the order found; the consumer removes what it has used. */
  readonly spans: Span[] = [];
  #offset = 0;
  readonly #resync: number;
  readonly #literal: View;
  readonly #decoded: DecodedView[];

  constructor(patterns: Patterns) {
    this.#resync = patterns.resync;
    this.#literal = new View(patterns.automaton, this.spans);
    this.#decoded = (['percent', 'json', 'html'] as const).map((f) => new DecodedView(f, patterns.automaton, this.spans));
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#offset;
  }

  /** The hot loop: the literal view on every byte, a decoded view only while awake. */
  push(data: Uint8Array): void {
    let pos = this.#offset;
    const literal = this.#literal;
    const decoded = this.#decoded;
    const resync = this.#resync;
    let awake = decoded.some((v) => v.awake);
    for (let i = 0; i < data.length; i++, pos++) {
      const b = data[i]!;
      if (INTRODUCER[b]) {
        // A decoded view wakes as a copy of the literal one *before* it reads the introducer.
        for (const d of decoded) if (b === d.introducer && !d.awake) d.wake(literal);
        awake = true;
      }
      if (!literal.fast(b, pos)) literal.push(b, pos, pos + 1);
      if (!awake) continue;
      awake = false;
      for (const d of decoded) {
        if (!d.awake) continue;
        d.push(b, pos);
        if (d.settled(resync)) d.awake = false;
        else awake = true;
      }
    }
    this.#offset = pos;
  }

  /** The end of the input: decoders give up what they held, then the folds. */
  finish(): void {
    for (const d of this.#decoded) if (d.awake) d.decoder.finish();
    for (const view of [this.#literal, ...this.#decoded.filter((d) => d.awake).map((d) => d.view)]) view.fold.release(view.emit);
  }
}
