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

/** What `load` imports (an ES module), imported the first time the returned function is called; a failed import is tried again. */
export function lazyImport<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => {
    if (loaded) return loaded;
    const loading = (loaded = load());
    loading.catch(() => {
      if (loaded === loading) loaded = undefined;
    });
    return loading;
  };
}
