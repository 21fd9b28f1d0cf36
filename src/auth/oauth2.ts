// `o_auth2`: a bearer access token obtained with the refresh_token or client_credentials
// grant. The token itself comes from a TokenSource (cache, single flight, rotation: see
// broker/oauth-tokens.ts); this module only puts it on the request.

import type { AuthStrategy } from './types.ts';

export interface TokenSource {
  /** A valid access token, from cache or freshly obtained. */
  token(secrets: ReadonlyMap<string, string>): Promise<string>;
  /** Forgets the current token (the upstream answered 401 with it). */
  invalidate(rejected: string): Promise<void>;
}

export interface OAuth2Strategy extends AuthStrategy {
  readonly tokens: TokenSource;
}

export function oauth2Strategy(tokens: TokenSource): OAuth2Strategy {
  return {
    kind: 'o_auth2',
    ownedHeaders: ['authorization'],
    ownedQueryParams: ['access_token'],
    tokens,
    async apply(request, secrets) {
      const token = await tokens.token(secrets);
      request.headers.set('authorization', `Bearer ${token}`);
      return [token];
    },
  };
}
