// Aho-Corasick over bytes, compiled to a dense table: one array read per byte whatever the
// number of needles, so scanning costs the same for one secret or twenty. Bytes that occur
// in no needle share one column, which keeps the table small.

export class Automaton {
  // Public for the matcher's inner loop, which reads them directly.
  /** Byte -> column; 0 is every byte no needle contains. */
  readonly column = new Uint8Array(256);
  readonly columns: number;
  /** (state * columns + column) -> next state. */
  readonly next: Int32Array;
  /** state -> length of the longest needle ending here (0: none). */
  readonly found: Int32Array;
  /** state -> the tag of that needle. */
  readonly tag: Uint8Array;
  readonly maxLength: number;

  /** `tags[i]` is a small number the caller gives needle i (what kind of form it is). */
  constructor(needles: readonly Uint8Array[], tags: readonly number[] = []) {
    let columns = 1;
    for (const n of needles) for (const b of n) if (this.column[b] === 0) this.column[b] = columns++;
    if (columns > 255) throw new Error('too many distinct bytes');
    this.columns = columns;
    this.maxLength = Math.max(0, ...needles.map((n) => n.length));

    // The trie, as sparse goto maps.
    const goto: Array<Map<number, number>> = [new Map()];
    const found = [0];
    const tag = [0];
    for (const [index, needle] of needles.entries()) {
      if (needle.length === 0) continue;
      let s = 0;
      for (const b of needle) {
        const c = this.column[b]!;
        let t = goto[s]!.get(c);
        if (t === undefined) {
          t = goto.length;
          goto.push(new Map());
          found.push(0);
          tag.push(0);
          goto[s]!.set(c, t);
        }
        s = t;
      }
      if (needle.length > found[s]!) {
        found[s] = needle.length;
        tag[s] = tags[index] ?? 0;
      }
    }

    // Breadth first: failure links, then the dense table with failures folded in.
    const states = goto.length;
    const next = new Int32Array(states * columns);
    const fail = new Int32Array(states);
    const queue: number[] = [];
    for (let c = 0; c < columns; c++) {
      const t = goto[0]!.get(c);
      if (t !== undefined) {
        next[c] = t;
        queue.push(t);
      }
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      if (found[fail[s]!]! > found[s]!) {
        found[s] = found[fail[s]!]!;
        tag[s] = tag[fail[s]!]!;
      }
      for (let c = 0; c < columns; c++) {
        const t = goto[s]!.get(c);
        if (t === undefined) {
          next[s * columns + c] = next[fail[s]! * columns + c]!;
        } else {
          fail[t] = next[fail[s]! * columns + c]!;
          next[s * columns + c] = t;
          queue.push(t);
        }
      }
    }
    this.next = next;
    this.found = Int32Array.from(found);
    this.tag = Uint8Array.from(tag);
  }
}
