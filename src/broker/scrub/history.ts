// Where a view's recent symbols came from, so a match maps back to the raw bytes to redact.
// Kept as runs rather than one entry per symbol: a stretch of plain bytes (each its own
// symbol, as in the input) is one run however long, so the plain-text scan (./plain.ts)
// records a stretch in O(1) instead of writing three numbers per byte.

export class History {
  /** Symbols recorded so far. */
  count = 0;
  #runs = 0;
  /** The most runs since the last reset, before a copy set them (reset clears up to there). */
  #used = 0;
  readonly #mask: number;
  /** Per run: index of its first symbol, raw start and end (a plain run: one byte per symbol). */
  readonly #sym: Float64Array;
  readonly #start: Float64Array;
  readonly #end: Float64Array;
  /** A symbol run's byte; a plain run's bytes are read from its chunk. */
  readonly #byte: Uint8Array;
  readonly #data: Array<Uint8Array | undefined>;
  readonly #at: Float64Array;
  /** Where the newest run, when plain, ends: in its chunk and as a raw offset (a next stretch right after it extends it). */
  #tailData: Uint8Array | undefined;
  #tailAt = 0;
  #tailPos = 0;
  /** The symbol `locate` found. */
  start = 0;
  end = 0;
  byte = 0;

  /** Holds at least `depth` symbols back (each run is at least one symbol). */
  constructor(depth: number) {
    let size = 1;
    while (size < depth) size <<= 1;
    this.#mask = size - 1;
    this.#sym = new Float64Array(size);
    this.#start = new Float64Array(size);
    this.#end = new Float64Array(size);
    this.#byte = new Uint8Array(size);
    this.#data = new Array<Uint8Array | undefined>(size).fill(undefined);
    this.#at = new Float64Array(size);
  }

  /** Back to empty, holding no chunk. */
  reset(): void {
    // Only slots runs used since the last reset hold a chunk (a small answer uses a few of
    // hundreds); a copy may have set the count of runs back below the most used.
    this.#data.fill(undefined, 0, Math.min(Math.max(this.#runs, this.#used), this.#data.length));
    this.#used = 0;
    this.count = 0;
    this.#runs = 0;
    this.#tailData = undefined;
    this.start = this.end = this.byte = 0;
  }

  /** One symbol decoded from raw [start, end). */
  symbol(byte: number, start: number, end: number): void {
    const r = this.#runs++ & this.#mask;
    this.#sym[r] = this.count++;
    this.#start[r] = start;
    this.#end[r] = end;
    this.#byte[r] = byte;
    this.#data[r] = undefined;
    this.#tailData = undefined;
  }

  /** `n` plain symbols: the bytes `data[at, at + n)`, which sit at raw offsets [pos, pos + n). */
  plain(data: Uint8Array, at: number, pos: number, n: number): void {
    // No run without a symbol: the ring holds a match only while every run holds one.
    if (n === 0) return;
    if (data === this.#tailData && pos === this.#tailPos && at === this.#tailAt) {
      this.#end[(this.#runs - 1) & this.#mask] = pos + n;
    } else {
      const r = this.#runs++ & this.#mask;
      this.#sym[r] = this.count;
      this.#start[r] = pos;
      this.#end[r] = pos + n;
      this.#data[r] = data;
      this.#at[r] = at;
      this.#tailData = data;
    }
    this.#tailAt = at + n;
    this.#tailPos = pos + n;
    this.count += n;
  }

  /** Sets start, end and byte to those of the symbol `back` places before the newest. */
  locate(back: number): void {
    const j = this.count - 1 - back;
    let r = this.#runs - 1;
    const oldest = this.#runs - 1 - this.#mask;
    while (this.#sym[r & this.#mask]! > j) {
      // Never when every run holds a symbol (the ring is deeper than any needle): a bug
      // fails the answer rather than loop over the ring.
      r -= 1;
      if (r < Math.max(0, oldest)) throw new Error('scrubber history lost a match');
    }
    r &= this.#mask;
    const data = this.#data[r];
    if (data === undefined) {
      this.start = this.#start[r]!;
      this.end = this.#end[r]!;
      this.byte = this.#byte[r]!;
    } else {
      const k = j - this.#sym[r]!;
      this.start = this.#start[r]! + k;
      this.end = this.start + 1;
      this.byte = data[this.#at[r]! + k]!;
    }
  }

  /** Becomes a copy of `o`'s last `depth` symbols (at least). */
  copyFrom(o: History, depth: number): void {
    this.#used = Math.max(this.#used, this.#runs);
    this.count = o.count;
    this.#runs = o.#runs;
    this.#tailData = o.#tailData;
    this.#tailAt = o.#tailAt;
    this.#tailPos = o.#tailPos;
    const j = o.count - depth;
    for (let r = o.#runs - 1; r >= 0 && r > o.#runs - 1 - (this.#mask + 1); r--) {
      const k = r & this.#mask;
      this.#sym[k] = o.#sym[k]!;
      this.#start[k] = o.#start[k]!;
      this.#end[k] = o.#end[k]!;
      this.#byte[k] = o.#byte[k]!;
      this.#data[k] = o.#data[k];
      this.#at[k] = o.#at[k]!;
      if (o.#sym[k]! <= j) break;
    }
  }
}
