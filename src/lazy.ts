// A dependency loaded on first use rather than at import: a one-shot command pays only for the
// libraries it runs (an owner's `secrets list` never sends a request, signs or validates a
// provider file), and the daemon loads each once, on its first request.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The module `specifier`, required the first time the returned function is called. */
export function lazy<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(specifier) as T);
}
