// Answers still streaming to agents (HTTP bodies, WebSocket sessions) were scrubbed for what
// their agent could reach when they were admitted. An upstream that keeps state can push a
// value planted by a later request (a rotated secret, a newly granted credential's, a
// refreshed OAuth token) down an answer opened earlier; so before anything goes upstream,
// every open answer that could receive it is widened to what its agent can reach now.
// Widening reads the bytes an answer still holds again (redactor.ts `widen`); nothing it has
// released can be taken back, which is why this runs before the request is sent, not after.

import type { Scrubber } from './scrub/scrubber.ts';

export interface OpenAnswer {
  /** Whose answer: an agent in an execution context (`undefined`: the owner's own). */
  reader: string | undefined;
  /** What its reader can reach at `generation`, OAuth tokens held now included (the owner: nothing more). */
  reach(generation: number): Promise<Scrubber | undefined>;
  widen(wider: Scrubber): void;
}

/** One reader's open answers. */
interface Reader {
  /** Each answer, and the set it was last widened to (a repeat is skipped). */
  answers: Map<OpenAnswer, Scrubber | undefined>;
  /** The set every answer here but the fresh ones was last widened to, if one. */
  all: Scrubber | undefined;
  /** Answers opened since `all` was set. */
  fresh: Set<OpenAnswer>;
}

export class OpenAnswers {
  /**
   * By reader: a request's cover costs one look per reader and one per answer opened since,
   * not one per answer open (every request of a busy agent would go through all of them).
   */
  readonly #readers = new Map<string | undefined, Reader>();
  #size = 0;

  /** Keeps `answer` widened until the returned function is called. */
  add(answer: OpenAnswer): () => void {
    let r = this.#readers.get(answer.reader);
    if (!r) this.#readers.set(answer.reader, (r = { answers: new Map(), all: undefined, fresh: new Set() }));
    const reader = r;
    reader.answers.set(answer, undefined);
    reader.fresh.add(answer);
    this.#size++;
    return () => {
      if (!reader.answers.delete(answer)) return;
      reader.fresh.delete(answer);
      this.#size--;
      if (reader.answers.size === 0 && this.#readers.get(answer.reader) === reader) this.#readers.delete(answer.reader);
    };
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Before a request of `sender` goes upstream with `scrubber` (all `sender` can reach, and
   * what this request injects) at `generation`: each open answer of the same reader is
   * widened to `scrubber`, every other agent's to what it can reach now.
   */
  async cover(sender: string | undefined, scrubber: Scrubber, generation: number): Promise<void> {
    for (const [reader, r] of this.#readers) {
      // One look-up per reader, however many answers it holds open.
      const wider = sender !== undefined && reader === sender ? scrubber : await r.answers.keys().next().value?.reach(generation);
      if (wider === undefined) continue;
      // (Answers closed meanwhile have left `r`; ones opened meanwhile are fresh in it.)
      const widen = (answer: OpenAnswer) => {
        if (r.answers.get(answer) === wider) return;
        r.answers.set(answer, wider);
        answer.widen(wider);
      };
      if (wider === r.all) r.fresh.forEach(widen);
      else {
        for (const answer of r.answers.keys()) widen(answer);
        r.all = wider;
      }
      r.fresh.clear();
    }
  }
}
