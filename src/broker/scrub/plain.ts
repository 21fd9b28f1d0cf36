// The scan of a stretch of plain bytes: no escape introducer, no line break, every view's
// decoder and folding idle. There every view reads the same symbols (the bytes themselves),
// so instead of feeding each view byte by byte through its decoder and folding, this runs
// the automaton over the bytes directly, one state per view (a lane), in one loop.
//
// The work per byte is the same whatever the bytes and the secrets: one table read per lane,
// and a stop only where a needle is complete (which the output shows anyway, as the marker).
// A scan that skipped bytes unlike any needle would be faster, and would tell an agent that
// can time an echo how much of its text resembles a secret.
//
// A long stretch read by one lane is cut into SEGMENTS read side by side, so the processor
// overlaps their table reads (one lane's reads each wait for the one before). Every segment
// but the first starts from the root `maxLength` bytes early: the automaton's state is the
// longest suffix read that begins a needle, never longer than that, so by the segment's
// first byte its state is exact.

import type { Automaton } from './automaton.ts';

const SEGMENTS = 8;

export class PlainScan {
  /** (state * columns + column) -> next state * columns; negated (~) where a needle ends. */
  readonly #move: Int32Array;
  readonly #columns: number;
  /** Raw byte -> the automaton's column for its folded symbol. */
  readonly #column = new Uint8Array(256);
  /** Bytes a segment reads before its own. */
  readonly #warmup: number;

  /** `fold` maps a raw byte to its folded symbol. */
  constructor(automaton: Automaton, fold: Uint8Array) {
    const columns = (this.#columns = automaton.columns);
    this.#move = automaton.next.map((t) => (automaton.found[t] !== 0 ? ~(t * columns) : t * columns));
    for (let b = 0; b < 256; b++) this.#column[b] = automaton.column[fold[b]!]!;
    this.#warmup = automaton.maxLength;
  }

  /**
   * Reads the plain bytes data[from, end) in `lanes` (at most 4) views whose states are
   * states[0..lanes). Stops before the first byte that completes a needle in any lane (the
   * caller's full path reads that one), or at `end`. Returns where it stopped, with the
   * states there.
   */
  scan(data: Uint8Array, from: number, end: number, states: Int32Array, lanes: number): number {
    const columns = this.#columns;
    if (lanes === 1) {
      const s = this.#segments(data, from, end, states[0]! * columns);
      if (s >= 0) {
        states[0] = s / columns;
        return end;
      }
      return this.#one(data, from, end, states);
    }
    const move = this.#move;
    const column = this.#column;
    // The lanes in locals (one not in use repeats the first): a loop over an array of
    // states is several times slower.
    let s0 = states[0]! * columns;
    let s1 = states[1]! * columns;
    let s2 = lanes > 2 ? states[2]! * columns : s0;
    let s3 = lanes > 3 ? states[3]! * columns : s0;
    let i = from;
    for (; i < end; i++) {
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
    states[0] = s0 / columns;
    states[1] = s1 / columns;
    if (lanes > 2) states[2] = s2 / columns;
    if (lanes > 3) states[3] = s3 / columns;
    return i;
  }

  /** One lane, byte after byte. */
  #one(data: Uint8Array, from: number, end: number, states: Int32Array): number {
    const move = this.#move;
    const column = this.#column;
    let s = states[0]! * this.#columns;
    let i = from;
    for (; i < end; i++) {
      const t = move[s + column[data[i]!]!]!;
      if (t < 0) break;
      s = t;
    }
    states[0] = s / this.#columns;
    return i;
  }

  /**
   * One lane from state `s` (times columns), in segments: the state at `end` (times
   * columns), or -1 when a needle ends somewhere in it, or the stretch is too short to cut.
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
