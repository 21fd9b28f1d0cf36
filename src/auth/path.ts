import { AivaultError } from '../errors.ts';
import { assertCleanPath } from '../policy/paths.ts';
import { renderTemplate } from '../registry/templates.ts';
import type { AuthStrategy } from './types.ts';

/** Percent-encodes what a path segment cannot hold; "/" becomes %2F, which the check below refuses. */
function encodePathValue(value: string): string {
  return encodeURIComponent(value).replace(/%(3A|40|21|24|26|27|28|29|2A|2B|2C|3B|3D)/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * `path`: a rendered prefix before the agent's path (Telegram's /bot<token>). Secret values
 * are percent-encoded so they cannot add segments, and the result must still be a clean path.
 */
export function pathStrategy(prefixTemplate: string): AuthStrategy {
  return {
    kind: 'path',
    ownedHeaders: [],
    ownedQueryParams: [],
    apply(request, secrets) {
      const encoded = new Map([...secrets].map(([k, v]) => [k, encodePathValue(v)]));
      const prefix = renderTemplate(prefixTemplate, encoded);
      const path = prefix + request.url.pathname;
      try {
        assertCleanPath(path);
      } catch {
        throw new AivaultError('CREDENTIAL_INVALID', 'the rendered path prefix is not a clean path');
      }
      request.url.pathname = path;
      if (request.url.pathname !== path) throw new AivaultError('CREDENTIAL_INVALID', 'the rendered path prefix does not survive URL parsing unchanged');
      return [prefix];
    },
  };
}
