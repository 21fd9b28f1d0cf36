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
// Where nothing is pending in any view, the views read the same bytes: ./plain.ts reads
// them for all views at once, with escapes that stand for one ASCII character; the rest goes
// byte by byte through each view's decoder and folding (the reference the scan is tested
// against).

import { Automaton } from './automaton.ts';
import { History } from './history.ts';
import { Escapes, PlainScan } from './plain.ts';
import { MAX_ESCAPE_BYTES, Unescaper, escapeAt, type EscapeFamily, type SymbolSink } from './unescape.ts';

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
  /** Held symbols: byte, start, end each (typed, not an array: this runs per line break). */
  readonly #held = new Float64Array(3 * SSE_FIELD.length);
  #count = 0;

  reset(): void {
    this.lineStart = false;
    this.#count = 0;
  }

  copyFrom(o: FoldState): void {
    this.lineStart = o.lineStart;
    this.#count = o.#count;
    for (let i = 0; i < 3 * o.#count; i++) this.#held[i] = o.#held[i]!; // .set() is a runtime call
  }

  /** Feeds one symbol; `emit` gets what passes (unfolded), now or once the prefix is decided. */
  push(b: number, start: number, end: number, emit: SymbolSink): void {
    if (b === LF || b === CR) {
      this.release(emit);
      this.lineStart = true;
      return;
    }
    if (!this.lineStart) return emit(b, start, end);
    const i = this.#count;
    if (i < SSE_FIELD.length ? (b | 0x20) === SSE_FIELD[i] : b === 0x20) {
      if (i < SSE_FIELD.length) {
        this.#held[3 * i] = b;
        this.#held[3 * i + 1] = start;
        this.#held[3 * i + 2] = end;
        this.#count++;
        return;
      }
      this.#count = 0; // `data: `
      this.lineStart = false;
      return;
    }
    if (i === SSE_FIELD.length) this.#count = 0; // `data:` without its space
    else this.release(emit);
    this.lineStart = false;
    emit(b, start, end);
  }

  release(emit: SymbolSink): void {
    const h = this.#held;
    const n = this.#count;
    this.#count = 0;
    for (let i = 0; i < 3 * n; i += 3) emit(h[i]!, h[i + 1]!, h[i + 2]!);
  }
}

/**
 * What the views make of `input` on its own, folded: the needle for a value. `lineStart`:
 * as read at the start of a line, where a leading `data:` field name is dropped.
 */
function folded(input: Uint8Array, lineStart = false): Uint8Array {
  const out: number[] = [];
  const f = new FoldState();
  f.lineStart = lineStart;
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
/** Values shorter than this are not looked for at all: replacing every "ab" would destroy a body. */
export const MIN_SCRUB_LENGTH = 4;
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
  readonly plain: PlainScan;

  constructor(values: Iterable<Uint8Array>) {
    const needles = new Map<string, { bytes: Uint8Array; tag: number }>();
    const add = (bytes: Uint8Array, tag: number) => {
      const key = Buffer.from(bytes).toString('latin1');
      if (bytes.length > 0 && !needles.has(key)) needles.set(key, { bytes, tag });
    };
    for (const v of values) {
      add(folded(v), 0);
      // A value that begins `data:` loses it to folding at the start of a line: the rest is
      // looked for too, unless it is too short to look for at all.
      const atLineStart = folded(v, true);
      if (atLineStart.length >= MIN_SCRUB_LENGTH) add(atLineStart, 0);
      add(folded(Buffer.from(Buffer.from(v).toString('hex'))), TAG_HEX);
      for (const core of base64Cores(v)) if (core.length >= MIN_NEEDLE) add(folded(core), TAG_BASE64);
      for (const wide of utf16Forms(v)) add(folded(wide), TAG_UTF16);
    }
    const list = [...needles.values()];
    this.automaton = new Automaton(list.map((n) => n.bytes), list.map((n) => n.tag));
    this.plain = new PlainScan(this.automaton, FOLD, FAMILIES.map((f) => INTRODUCERS[f]));
    const longest = this.automaton.maxLength;
    this.window = longest === 0 ? 0 : Math.max(...list.map((n) => n.bytes.length * WIDEST[n.tag]!)) + 8 * MAX_ESCAPE_BYTES;
    this.resync = longest + 8;
  }

  get empty(): boolean {
    return this.automaton.maxLength === 0;
  }

  /**
   * Matchers done with, reset, for the next scan: a matcher holds tens of KiB of history per
   * view, and a response takes two or three (headers, body, error text).
   */
  readonly #free: Matcher[] = [];

  /** A matcher over these needles: a reset one when one is free. */
  acquire(): Matcher {
    return this.#free.pop() ?? new Matcher(this);
  }

  /** Takes back a matcher its user will not touch again. */
  release(m: Matcher): void {
    if (m.patterns !== this || m.reference || this.#free.length >= FREE_MATCHERS) return;
    m.reset();
    this.#free.push(m);
  }
}

/** Free matchers kept per set of needles (enough for the requests in flight at once). */
const FREE_MATCHERS = 64;

/**
 * One view's scan: folding, the automaton's state, and where its last symbols came from (a
 * match is mapped back through them). A view can be copied into another.
 */
class View {
  readonly automaton: Automaton;
  readonly fold = new FoldState();
  state = 0;
  readonly history: History;
  /** A base64 match whose right neighbour (it may carry the secret's last bits) has not arrived. */
  openRight: Span | undefined;
  readonly #spans: Span[];
  /** The folding stage's output: one symbol into the automaton. */
  readonly emit: SymbolSink;

  constructor(automaton: Automaton, spans: Span[]) {
    this.automaton = automaton;
    this.#spans = spans;
    this.history = new History(automaton.maxLength + 2);
    this.emit = (b, start, end) => this.step(b, start, end);
  }

  push(b: number, start: number, end: number): void {
    this.fold.push(b, start, end, this.emit);
  }

  /** Whether nothing is pending: the next plain byte is simply the next symbol. */
  get idle(): boolean {
    return !this.fold.lineStart && this.openRight === undefined;
  }

  /**
   * The common case, kept small: the raw byte data[i] (at offset `pos`) folds to one symbol
   * that completes no needle. Returns false, having done nothing, for anything else.
   */
  fast(data: Uint8Array, i: number, pos: number): boolean {
    const b = data[i]!;
    const a = this.automaton;
    const next = a.next[this.state * a.columns + a.column[FOLD[b]!]!]!;
    if (a.found[next] !== 0 || b === LF || b === CR || !this.idle) return false;
    this.history.plain(data, i, pos, 1);
    this.state = next;
    return true;
  }

  step(b: number, start: number, end: number): void {
    if (this.openRight) {
      if (B64[b] && start === this.openRight.end) this.openRight.end = end;
      this.openRight = undefined;
    }
    this.history.symbol(b, start, end);
    const a = this.automaton;
    this.state = a.next[this.state * a.columns + a.column[FOLD[b]!]!]!;
    const length = a.found[this.state]!;
    if (length > 0) this.#found(length, end);
  }

  #found(length: number, end: number): void {
    const h = this.history;
    h.locate(length - 1);
    let start = h.start;
    if (this.automaton.tag[this.state] === TAG_BASE64) {
      // One character either side may share bits with the secret: it goes too, when it
      // stands right next to the match (not across a space or a line break).
      if (length < h.count) {
        const first = start;
        h.locate(length);
        if (B64[h.byte] && h.end === first) start = h.start;
      }
      this.openRight = { start, end };
      this.#spans.push(this.openRight);
      return;
    }
    this.#spans.push({ start, end });
  }

  reset(): void {
    this.state = 0;
    this.fold.reset();
    this.history.reset();
    this.openRight = undefined;
  }

  copyFrom(o: View): void {
    this.state = o.state;
    this.history.copyFrom(o.history, this.automaton.maxLength + 2);
    this.fold.copyFrom(o.fold);
    this.openRight = o.openRight;
  }
}

/**
 * How many bytes past the point where a decoded lane may sleep the plain scan reads on before
 * it stops to put it to sleep: a stop costs about what a lane's reads of that many bytes do,
 * and in text with an escape every hundred bytes or so (URLs in JSON) a lane that slept at
 * once was woken again almost at once, a stop each time. Sleeping later changes nothing
 * found: a settled lane is in the literal view's state, as a woken one starts.
 */
const SLEEP_SLACK = 256;

const FAMILIES = ['percent', 'json', 'html'] as const;
const INTRODUCERS: Record<EscapeFamily, number> = { percent: 0x25, json: 0x5c, html: 0x26 };
const INTRODUCER = new Uint8Array(256);
/** Introducer -> its family's index in FAMILIES. */
const FAMILY = new Uint8Array(256);
FAMILIES.forEach((f, k) => {
  INTRODUCER[INTRODUCERS[f]] = 1;
  FAMILY[INTRODUCERS[f]] = k;
});

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

  push(data: Uint8Array, i: number, pos: number): void {
    // Outside an escape, a plain byte is the literal view's symbol: the short way.
    const b = data[i]!;
    if (b !== this.introducer && this.decoder.idle && this.view.fast(data, i, pos)) {
      this.#plain++;
      return;
    }
    this.decoder.push(b, pos);
  }

  /**
   * data[i, end) (the chunk at offset `base`) read by the plain scan as lane `lane`, into
   * `state`: plain bytes, and the escapes `escapes` lists for this lane, each one symbol.
   */
  plain(data: Uint8Array, i: number, end: number, base: number, state: number, lane: number, escapes: Escapes | undefined): void {
    const history = this.view.history;
    for (let e = 0; escapes !== undefined && e < 3 * escapes.count; e += 3) {
      if (escapes.list[e] !== lane) continue;
      const at = escapes.list[e + 1]!;
      const escape = escapes.list[e + 2]!;
      if (at > i) history.plain(data, i, base + i, at - i);
      i = at + (escape & 15);
      // A line break is dropped by folding (the scan read it so only when nothing follows from it).
      if (escape >> 4 !== LF && escape >> 4 !== CR) history.symbol(escape >> 4, base + at, base + i);
      this.#plain = 0;
    }
    if (end > i) history.plain(data, i, base + i, end - i);
    this.#plain += end - i;
    this.view.state = state;
  }

  reset(): void {
    this.awake = false;
    this.#plain = 0;
    this.decoder.reset();
    this.view.reset();
  }

  wake(literal: View): void {
    this.awake = true;
    this.#plain = 0;
    this.view.copyFrom(literal);
  }

  get idle(): boolean {
    return this.decoder.idle && this.view.idle;
  }

  /** Whether it may sleep: nothing pending and only plain symbols for long enough. */
  settled(resync: number): boolean {
    return this.#plain >= resync && this.decoder.idle;
  }

  /** An escape decoded elsewhere (the plain scan's): `b`, from raw [start, end). */
  escaped(b: number, start: number, end: number): void {
    this.#plain = 0;
    this.view.push(b, start, end);
  }

  /** How many more plain symbols until it may sleep (at least one). */
  untilSettled(resync: number): number {
    return Math.max(1, resync - this.#plain);
  }
}

export interface MatcherOptions {
  /** Feed every byte through every view, no plain scan: the reference it is tested against. */
  reference?: boolean;
}

/** Scans a byte stream (fed in order, in any pieces) and collects the spans to redact. */
export class Matcher {
  /** Spans found, in the order found; the consumer removes what it has used. */
  readonly spans: Span[] = [];
  #offset = 0;
  readonly #resync: number;
  readonly #literal: View;
  readonly #decoded: DecodedView[];
  readonly #plain: PlainScan | undefined;
  /** The plain scan's lanes: the literal view's state, then each awake decoded view's. */
  readonly #states = new Int32Array(4);
  readonly #laneViews: DecodedView[] = [];
  /** Each lane's escape family (its index in FAMILIES; -1: the literal view). */
  readonly #families = new Int8Array(4).fill(-1);
  /** The escapes the plain scan read in its lanes. */
  readonly #escapes = new Escapes();
  /** Where each lane may sleep (plain.ts `scanSettling`). */
  readonly #settle = new Int32Array(4);

  readonly patterns: Patterns;
  readonly reference: boolean;

  constructor(patterns: Patterns, options: MatcherOptions = {}) {
    this.patterns = patterns;
    this.reference = options.reference === true;
    this.#resync = patterns.resync;
    this.#literal = new View(patterns.automaton, this.spans);
    this.#decoded = FAMILIES.map((f) => new DecodedView(f, patterns.automaton, this.spans));
    this.#plain = options.reference === true ? undefined : patterns.plain;
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#offset;
  }

  /** A new matcher reads on from `offset` of a stream another one began (redactor.ts `widen`). */
  startAt(offset: number): void {
    if (this.#offset !== 0 || this.spans.length > 0) throw new Error('a matcher can start at an offset only before it reads');
    this.#offset = offset;
  }

  /** Back to the state a new one starts in (a differential property test holds it to that). */
  reset(): void {
    this.spans.length = 0;
    this.#offset = 0;
    this.#literal.reset();
    for (const d of this.#decoded) d.reset();
    this.#states.fill(0);
    this.#laneViews.length = 0;
  }

  /** Plain stretches go to the plain scan; every other byte through each view, one by one. */
  push(data: Uint8Array): void {
    const base = this.#offset;
    for (let i = 0; i < data.length; i++) {
      if (this.#plain !== undefined && this.#idle()) {
        i = this.#stretch(data, i, base);
        if (i === data.length) break;
      }
      this.#byte(data, i, base + i);
    }
    this.#offset = base + data.length;
  }

  #idle(): boolean {
    if (!this.#literal.idle) return false;
    for (const d of this.#decoded) if (d.awake && !d.idle) return false;
    return true;
  }

  /**
   * Plain bytes from data[i], and the escapes between them while nothing else is pending:
   * returns the index of the first byte left to the byte-by-byte path.
   */
  #stretch(data: Uint8Array, i: number, base: number): number {
    for (;;) {
      // The scan stops before an introducer or a line break, or a needle's end.
      const end = this.#lanes(data, i, data.length, base, undefined, false);
      if (end === data.length || INTRODUCER[data[end]!] === 0) return end;
      const family = this.#decoded[FAMILY[data[end]!]!]!;
      if (!family.awake) {
        // Woken before it reads its introducer, as a copy of the literal view; the scan then
        // reads the escape in its lane when it can.
        family.wake(this.#literal);
        i = end;
        continue;
      }
      i = this.#escape(data, end, base);
      if (i === end || !this.#idle()) return i;
    }
  }

  /**
   * Plain bytes data[i, end), in lanes: the literal view and each awake decoded view but
   * `skip`; a decoded view sleeps once settled, at the next stop (SLEEP_SLACK bytes on at
   * most). Returns where it stopped: before a byte that completes a needle, before a stop
   * byte (unless `raw`: an escape's own bytes), or at `end`.
   */
  #lanes(data: Uint8Array, i: number, end: number, base: number, skip: DecodedView | undefined, raw: boolean): number {
    const plain = this.#plain!;
    const literal = this.#literal;
    const states = this.#states;
    const lanes = this.#laneViews;
    const families = this.#families;
    const settle = this.#settle;
    while (i < end) {
      let n = 0;
      let limit = end;
      states[0] = literal.state;
      for (let f = 0; f < FAMILIES.length; f++) {
        const d = this.#decoded[f]!;
        if (!d.awake || d === skip) continue;
        lanes[n++] = d;
        states[n] = d.view.state;
        families[n] = f;
        settle[n] = i + d.untilSettled(this.#resync + SLEEP_SLACK);
        limit = Math.min(limit, settle[n]!);
      }
      // Escapes read in the scan (not an escape's own bytes, `raw`) move their lane's settling
      // point on: the scan then stops where some lane may sleep, or before what it cannot read.
      const stop = raw ? plain.scan(data, i, limit, states, n + 1, true) : plain.scanSettling(data, i, end, states, n + 1, families, this.#escapes, settle, this.#resync + SLEEP_SLACK);
      const escapes = raw ? undefined : this.#escapes;
      literal.state = states[0]!;
      literal.history.plain(data, i, base + i, stop - i);
      for (let k = 0; k < n; k++) {
        const d = lanes[k]!;
        d.plain(data, i, stop, base, states[k + 1]!, k + 1, escapes);
        if (d.settled(this.#resync)) d.awake = false;
      }
      if (!raw) {
        // Where it stopped: before what it could not read, or where a lane may sleep.
        let next = end;
        for (let k = 1; k <= n; k++) next = Math.min(next, settle[k]!);
        limit = next;
      }
      if (stop < limit) return stop;
      i = stop;
    }
    return end;
  }

  /**
   * The escape at data[i], read without the byte-by-byte path when it is whole in this chunk
   * and stands for one ASCII symbol: its family's view (woken as a copy of the literal view
   * first, as the byte-by-byte path does) gets that symbol, every other lane its raw bytes.
   * Returns where reading goes on: after it; or at `i`, all left to the byte-by-byte path; or
   * before a byte inside it that completes a needle (its view's decoder holds what it read).
   */
  #escape(data: Uint8Array, i: number, base: number): number {
    const escape = escapeAt(data, i);
    if (escape < 0 || escape >> 4 >= 0x80) return i;
    const length = escape & 15;
    const family = this.#decoded[FAMILY[data[i]!]!]!;
    if (!family.awake) family.wake(this.#literal);
    const stop = this.#lanes(data, i, i + length, base, family, true);
    if (stop === i + length) {
      family.escaped(escape >> 4, base + i, base + stop);
      return stop;
    }
    for (let j = i; j < stop; j++) family.decoder.push(data[j]!, base + j);
    return stop;
  }

  /** One byte through every view: the literal one, and each decoded one while awake. */
  #byte(data: Uint8Array, i: number, pos: number): void {
    const b = data[i]!;
    const literal = this.#literal;
    // A decoded view wakes as a copy of the literal one *before* it reads the introducer.
    if (INTRODUCER[b]) for (const d of this.#decoded) if (b === d.introducer && !d.awake) d.wake(literal);
    if (!literal.fast(data, i, pos)) literal.push(b, pos, pos + 1);
    for (const d of this.#decoded) {
      if (!d.awake) continue;
      d.push(data, i, pos);
      if (d.settled(this.#resync)) d.awake = false;
    }
  }

  /** The end of the input: decoders give up what they held, then the folds. */
  finish(): void {
    for (const d of this.#decoded) if (d.awake) d.decoder.finish();
    this.#literal.fold.release(this.#literal.emit);
    for (const d of this.#decoded) if (d.awake) d.view.fold.release(d.view.emit);
  }
}
