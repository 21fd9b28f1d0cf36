import type { QueryEntry } from '../registry/types.ts';
import { renderQueryValue } from './render.ts';
import type { AuthStrategy } from './types.ts';

/** `query` and `multi_query`: parameters appended to the query string (agent copies removed). */
export function queryStrategy(entries: readonly QueryEntry[], kind = entries.length === 1 ? 'query' : 'multi_query'): AuthStrategy {
  return {
    kind,
    ownedHeaders: [],
    ownedQueryParams: entries.map((e) => e.param_name),
    apply(request, secrets) {
      const injected: string[] = [];
      for (const e of entries) {
        const value = renderQueryValue(e.value_template, secrets);
        request.url.searchParams.set(e.param_name, value);
        injected.push(value);
      }
      return injected;
    },
  };
}
