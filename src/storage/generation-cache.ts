// Reads on the hot path, from memory while the vault's generation stands. Every change to
// what a request is judged by (agents, grants, secrets, credentials, capabilities, policy)
// bumps the generation in the same transaction, so a request that reads the generation once
// may take everything else from what was read at that generation: one storage round trip
// instead of five to ten, and a change made by any process (any replica) still applies to
// the next request that reads the new generation.

/** The vault as one request sees it: its generation, and reads memoised at that generation. */
export interface Snapshot {
  readonly generation: number;
  /**
   * `load()`'s answer, shared with every request at this generation. An answer `keep` refuses
   * (an unknown token: an agent must not fill the cache with guesses) is not kept.
   */
  memo<T>(key: string, load: () => Promise<T>, keep?: (value: T) => boolean): Promise<T>;
}

/** What the cache holds at most; past it, the entry unused longest goes. */
const MAX_ENTRIES = 4096;

const always = () => true;

export class GenerationCache {
  readonly #read: () => Promise<number>;
  readonly #max: number;
  #generation = -1;
  readonly #entries = new Map<string, Promise<unknown>>();

  constructor(readGeneration: () => Promise<number>, max = MAX_ENTRIES) {
    this.#read = readGeneration;
    this.#max = max;
  }

  /** The newest generation a snapshot has seen (-1 before any). */
  get newest(): number {
    return this.#generation;
  }

  /** Reads the generation (the request's one round trip) and returns the vault as of it. */
  async snapshot(): Promise<Snapshot> {
    return this.at(await this.#read());
  }

  /** The vault as of `generation`, already read by the caller. */
  at(generation: number): Snapshot {
    // A newer generation makes everything kept stale (and some of it is secret): drop it.
    if (generation > this.#generation) {
      this.#entries.clear();
      this.#generation = generation;
    }
    // A request that read an older generation than the newest seen reads for itself.
    if (generation < this.#generation) return { generation, memo: (_key, load) => load() };
    return { generation, memo: (key, load, keep) => this.#memo(generation, key, load, keep ?? always) };
  }

  #memo<T>(generation: number, key: string, load: () => Promise<T>, keep: (value: T) => boolean): Promise<T> {
    // The generation moved on since this snapshot was taken: what it loads is not the newest.
    if (generation !== this.#generation) return load();
    const kept = this.#entries.get(key) as Promise<T> | undefined;
    if (kept) {
      // Most recently used last: the bound drops what has gone unused longest.
      this.#entries.delete(key);
      this.#entries.set(key, kept);
      return kept;
    }
    const loading = load();
    this.#entries.set(key, loading);
    const forget = () => {
      if (this.#entries.get(key) === loading) this.#entries.delete(key);
    };
    loading.then((value) => keep(value) || forget(), forget);
    if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    return loading;
  }
}
