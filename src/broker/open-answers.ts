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

export class OpenAnswers {
  /** Each open answer, and the set it was last widened to (a repeat is skipped). */
  readonly #open = new Map<OpenAnswer, Scrubber | undefined>();

  /** Keeps `answer` widened until the returned function is called. */
  add(answer: OpenAnswer): () => void {
    this.#open.set(answer, undefined);
    return () => this.#open.delete(answer);
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * Before a request of `sender` goes upstream with `scrubber` (all `sender` can reach, and
   * what this request injects) at `generation`: each open answer of the same reader is
   * widened to `scrubber`, every other agent's to what it can reach now.
   */
  async cover(sender: string | undefined, scrubber: Scrubber, generation: number): Promise<void> {
    // One look-up per reader, however many answers it holds open.
    const reached = new Map<string | undefined, Scrubber | undefined>(sender === undefined ? [] : [[sender, scrubber]]);
    for (const [answer, last] of this.#open) {
      let wider = reached.get(answer.reader);
      if (wider === undefined && !reached.has(answer.reader)) reached.set(answer.reader, (wider = await answer.reach(generation)));
      if (wider === undefined || wider === last || !this.#open.has(answer)) continue;
      this.#open.set(answer, wider);
      answer.widen(wider);
    }
  }
}
