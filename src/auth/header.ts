import type { HeaderEntry } from '../registry/types.ts';
import { renderHeaderValue } from './render.ts';
import type { AuthStrategy } from './types.ts';

/** `header` and `multi_header`: one or more headers rendered from templates. */
export function headerStrategy(entries: readonly HeaderEntry[], kind = entries.length === 1 ? 'header' : 'multi_header'): AuthStrategy {
  return {
    kind,
    ownedHeaders: entries.map((e) => e.header_name.toLowerCase()),
    ownedQueryParams: [],
    apply(request, secrets) {
      const injected: string[] = [];
      for (const e of entries) {
        const value = renderHeaderValue(e.value_template, secrets);
        request.headers.set(e.header_name.toLowerCase(), value);
        injected.push(value);
      }
      return injected;
    },
  };
}
