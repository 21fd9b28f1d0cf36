// The scan of a stretch of plain bytes: no escape introducer, no line break, every view's
// decoder and folding idle. There every view reads the same symbols (the bytes themselves),
// so instead of feeding each view byte by byte through its decoder and folding, this runs
// the automaton over the bytes directly, one state per view (a lane), in one loop.
//
// The work per byte is the same whatever the bytes and the secrets: one table read per lane,
// and a stop only where a needle is complete (which the output shows anyway, as the marker)
// or at a byte that ends the stretch (an introducer or a line break: the agent's own text,
// nothing of a secret's). A scan that skipped bytes unlike any needle would be faster, and
// would tell an agent that can time an echo how much of its text resembles a secret.
//
// The bytes that end a stretch have a column of their own, every move on it a stop, so the
// scan finds the stretch's end without a pass of its own. A long stretch read by one lane is
// cut into SEGMENTS read side by side, so the processor overlaps their table reads (one
// lane's reads each wait for the one before); its end is found natively first. Every segment
// but the first starts from the root `maxLength` bytes early: the automaton's state is the
// longest suffix read that begins a needle, never longer than that, so by the segment's
// first byte its state is exact.

import type { Automaton } from './automaton.ts';
import { escapeAt } from './unescape.ts';

const LF = 0x0a;
const CR = 0x0d;
/** Escapes one scan reads before it hands them to its caller. */
const MAX_ESCAPES = 64;

/** The escapes a scan read, in order: lane, raw offset in the chunk, and escapeAt's answer (symbol * 16 + length). */
export class Escapes {
  count = 0;
  readonly list = new Int32Array(3 * MAX_ESCAPES);
}

const SEGMENTS = 8;
/** Bytes one lane reads one by one before it looks for the stretch's end to read in segments. */
const SHORT = 256;
/** The first window #stretchEnd searches for the stretch's end. */
const STRETCH_WINDOW = 4096;

export class PlainScan {
  /**
   * (state * width + column) -> next state * width; negated (~) where a needle ends, and on
   * the stop column (the last), where the scan stops before the byte.
   */
  readonly #move: Int32Array;
  readonly #width: number;
  /** Raw byte -> the automaton's column for its folded symbol; a stop byte's is the stop column. */
  readonly #column = new Uint8Array(256);
  /** The same, without stops (the bytes of an escape, read as themselves). */
  readonly #columnAll = new Uint8Array(256);
  readonly #stops: number[];
  /** Raw byte -> the escape family it introduces (its index in `introducers`), or -1. */
  readonly #family = new Int8Array(256).fill(-1);
  /** Scratch: the lanes' states after an escape, before they are taken. */
  readonly #next = new Int32Array(4);
  /** Bytes a segment reads before its own. */
  readonly #warmup: number;

  /**
   * `fold` maps a raw byte to its folded symbol; a scan stops before an escape's introducer
   * (`introducers`, family by family) and a line break.
   */
  constructor(automaton: Automaton, fold: Uint8Array, introducers: readonly number[]) {
    const stops = [...introducers, LF, CR];
    const columns = automaton.columns;
    const width = (this.#width = columns + 1);
    const move = (this.#move = new Int32Array(width * (automaton.next.length / columns)));
    for (let s = 0; s * columns < automaton.next.length; s++) {
      for (let c = 0; c < columns; c++) {
        const t = automaton.next[s * columns + c]!;
        move[s * width + c] = automaton.found[t] !== 0 ? ~(t * width) : t * width;
      }
      move[s * width + columns] = ~(s * width);
    }
    for (let b = 0; b < 256; b++) this.#column[b] = this.#columnAll[b] = automaton.column[fold[b]!]!;
    for (const b of stops) this.#column[b] = columns;
    this.#stops = stops;
    introducers.forEach((b, k) => (this.#family[b] = k));
    this.#warmup = automaton.maxLength;
  }

  /**
   * Reads the plain bytes from data[from] up to `end` in `lanes` (at most 4) views whose
   * states are states[0..lanes). Stops before the first byte that completes a needle in any
   * lane (the caller's full path reads that one), before a stop byte unless `raw` (an
   * escape's own bytes, each read as itself), or at `end`. Returns where it stopped, with the
   * states there.
   */
  scan(data: Uint8Array, from: number, end: number, states: Int32Array, lanes: number, raw: boolean): number {
    return this.#scan(data, from, end, states, lanes, raw, undefined, undefined, undefined, 0);
  }

  /**
   * `scan` (not `raw`), reading escapes too: one of a family that has a lane here
   * (`families[k]`, -1 for the literal view) is read without stopping when it is whole and
   * stands for one ASCII symbol. That lane reads the symbol (a line break, dropped by folding,
   * only when what follows is plain and cannot begin `data:`), every other lane the raw bytes,
   * as the caller's full path would; each is listed in `escapes` for the caller's histories.
   * It stops too where a decoded lane may sleep: `settle[k]` is where lane k (k > 0) has read
   * `resync` plain symbols since its last escape, moved on by each escape read here.
   */
  scanSettling(data: Uint8Array, from: number, end: number, states: Int32Array, lanes: number, families: Int8Array, escapes: Escapes, settle: Int32Array, resync: number): number {
    return this.#scan(data, from, end, states, lanes, false, families, escapes, settle, resync);
  }

  #scan(data: Uint8Array, from: number, end: number, states: Int32Array, lanes: number, raw: boolean, families: Int8Array | undefined, escapes: Escapes | undefined, settle: Int32Array | undefined, resync: number): number {
    const width = this.#width;
    if (escapes) escapes.count = 0;
    if (lanes === 1 && !raw) return this.#one(data, from, end, states);
    const move = this.#move;
    const column = raw ? this.#columnAll : this.#column;
    const stop = width - 1;
    // The lanes in locals, one loop per count: a loop over an array of states is several
    // times slower, and every table read counts (none on lanes not in use).
    let s0 = states[0]! * width;
    let s1 = lanes > 1 ? states[1]! * width : s0;
    let s2 = lanes > 2 ? states[2]! * width : s0;
    let s3 = lanes > 3 ? states[3]! * width : s0;
    let i = from;
    let limit = end;
    for (let k = 1; settle !== undefined && k < lanes; k++) limit = Math.min(limit, settle[k]!);
    for (;;) {
      if (lanes === 2) {
        for (; i < limit; i++) {
          const c = column[data[i]!]!;
          const t0 = move[s0 + c]!;
          const t1 = move[s1 + c]!;
          if ((t0 | t1) < 0) break;
          s0 = t0;
          s1 = t1;
        }
      } else if (lanes === 3) {
        for (; i < limit; i++) {
          const c = column[data[i]!]!;
          const t0 = move[s0 + c]!;
          const t1 = move[s1 + c]!;
          const t2 = move[s2 + c]!;
          if ((t0 | t1 | t2) < 0) break;
          s0 = t0;
          s1 = t1;
          s2 = t2;
        }
      } else {
        for (; i < limit; i++) {
          const c = column[data[i]!]!;
          const t0 = move[s0 + c]!;
          const t1 = move[s1 + c]!;
          const t2 = move[s2 + c]!;
          const t3 = move[s3 + c]!;
          if ((t0 | t1 | t2 | t3) < 0) break;
          s0 = t0;
          s1 = t1;
          s2 = t2;
          s3 = t3;
        }
      }
      // Stopped at the end, a needle's end, or a stop byte: an escape may be read on.
      if (i === limit || column[data[i]!] !== stop || !families || !escapes) break;
      states[0] = s0;
      states[1] = s1;
      states[2] = s2;
      states[3] = s3;
      const n = this.#inline(data, i, end, states, lanes, families, escapes);
      if (n === 0) break;
      s0 = states[0]!;
      s1 = states[1]!;
      s2 = states[2]!;
      s3 = states[3]!;
      i += n;
      if (settle !== undefined) {
        // The escape's lane reads `resync` plain symbols from here before it may sleep.
        settle[escapes.list[3 * escapes.count - 3]!] = i + resync;
        limit = end;
        for (let k = 1; k < lanes; k++) limit = Math.min(limit, settle[k]!);
        if (i >= limit) break;
      }
    }
    states[0] = s0 / width;
    if (lanes > 1) states[1] = s1 / width;
    if (lanes > 2) states[2] = s2 / width;
    if (lanes > 3) states[3] = s3 / width;
    return i;
  }

  /**
   * The escape at data[i] read in every lane (states times width, in `states`), when it can
   * be: returns its length, or 0 to stop before it (its family has no lane here, it is not a
   * one-symbol escape (ASCII, or any byte percent-encoded) whole before `end`, it is a line break folding would not simply drop,
   * or it completes a needle in some lane).
   */
  #inline(data: Uint8Array, i: number, end: number, states: Int32Array, lanes: number, families: Int8Array, escapes: Escapes): number {
    const family = this.#family[data[i]!]!;
    let lane = -1;
    for (let k = 1; k < lanes; k++) if (families[k] === family) lane = k;
    if (family < 0 || lane < 0 || escapes.count === MAX_ESCAPES) return 0;
    const escape = escapeAt(data, i);
    if (escape < 0) return 0;
    const symbol = escape >> 4;
    const length = escape & 15;
    // Past ASCII, a percent escape is one byte (one symbol); a code point is several.
    if ((symbol >= 0x80 && data[i] !== 0x25) || i + length > end) return 0;
    // A line break: its view drops it (folding), and the next symbol is plain unless it could
    // begin an SSE field name (`data:`) or is not plain itself.
    const lineBreak = symbol === LF || symbol === CR;
    if (lineBreak && (i + length === end || (data[i + length]! | 0x20) === 0x64 || this.#column[data[i + length]!] === this.#width - 1)) return 0;
    const move = this.#move;
    const column = this.#columnAll;
    const next = this.#next;
    for (let k = 0; k < lanes; k++) {
      let t = states[k]!;
      if (k === lane) t = lineBreak ? t : move[t + column[symbol]!]!;
      else for (let j = i; j < i + length && t >= 0; j++) t = move[t + column[data[j]!]!]!;
      if (t < 0) return 0;
      next[k] = t;
    }
    for (let k = 0; k < lanes; k++) states[k] = next[k]!;
    const e = 3 * escapes.count++;
    escapes.list[e] = lane;
    escapes.list[e + 1] = i;
    escapes.list[e + 2] = escape;
    return length;
  }

  /** One lane: byte after byte, then in segments once the stretch proves long. */
  #one(data: Uint8Array, from: number, end: number, states: Int32Array): number {
    const move = this.#move;
    const column = this.#column;
    const width = this.#width;
    let s = states[0]! * width;
    let i = from;
    const short = Math.min(end, from + SHORT);
    for (; i < short; i++) {
      const t = move[s + column[data[i]!]!]!;
      if (t < 0) break;
      s = t;
    }
    if (i === short && i < end) {
      const stretch = this.#stretchEnd(data, i, end);
      const t = this.#segments(data, i, stretch, s);
      if (t >= 0) {
        s = t;
        i = stretch;
      }
      for (; i < end; i++) {
        const t = move[s + column[data[i]!]!]!;
        if (t < 0) break;
        s = t;
      }
    }
    states[0] = s / width;
    return i;
  }

  /**
   * The first stop byte in data[from, end), or `end` (native searches: this is the long case).
   * Searched in windows that double, so finding a stop costs what the stretch before it is
   * long, not what is left of the chunk (a search per stop byte to the chunk's end, at every
   * stretch, made a megabyte with an escape every few KiB read it hundreds of times over).
   */
  #stretchEnd(data: Uint8Array, from: number, end: number): number {
    for (let start = from, size = STRETCH_WINDOW; start < end; start += size, size *= 2) {
      const stop = Math.min(end, start + size);
      const view = Buffer.from(data.buffer, data.byteOffset + start, stop - start);
      let n = stop - start;
      for (const b of this.#stops) {
        const at = view.indexOf(b);
        if (at >= 0 && at < n) n = at;
      }
      if (start + n < stop) return start + n;
    }
    return end;
  }

  /**
   * One lane from state `s` (times width) over data[from, end), which holds no stop byte, in
   * segments: the state at `end` (times width), or -1 when a needle ends somewhere in it, or
   * the stretch is too short to cut.
   */
  #segments(data: Uint8Array, from: number, end: number, s: number): number {
    const w = this.#warmup;
    const size = Math.floor((end - from) / SEGMENTS);
    if (size < 4 * w || w === 0) return -1;
    const move = this.#move;
    const column = this.#column;
    // Segment k reads data[a_k, a_k + size + w): the first from `from` in the given state,
    // the others from the root, w bytes before their own.
    const a1 = from + size - w;
    const a2 = a1 + size;
    const a3 = a2 + size;
    const a4 = a3 + size;
    const a5 = a4 + size;
    const a6 = a5 + size;
    const a7 = a6 + size;
    let s0 = s;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let s5 = 0;
    let s6 = 0;
    let s7 = 0;
    for (let t = 0; t < size + w; t++) {
      s0 = move[s0 + column[data[from + t]!]!]!;
      s1 = move[s1 + column[data[a1 + t]!]!]!;
      s2 = move[s2 + column[data[a2 + t]!]!]!;
      s3 = move[s3 + column[data[a3 + t]!]!]!;
      s4 = move[s4 + column[data[a4 + t]!]!]!;
      s5 = move[s5 + column[data[a5 + t]!]!]!;
      s6 = move[s6 + column[data[a6 + t]!]!]!;
      s7 = move[s7 + column[data[a7 + t]!]!]!;
      if ((s0 | s1 | s2 | s3 | s4 | s5 | s6 | s7) < 0) return -1;
    }
    // The rest, after the last segment.
    for (let i = a7 + size + w; i < end; i++) {
      s7 = move[s7 + column[data[i]!]!]!;
      if (s7 < 0) return -1;
    }
    return s7;
  }
}
