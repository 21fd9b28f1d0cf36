import { AivaultError } from '../errors.ts';
import { renderHeaderValue } from './render.ts';
import type { AuthStrategy } from './types.ts';

/** `basic`: HTTP Basic from username/password placeholders, or from the provider's templates. */
export function basicStrategy(usernameTemplate = '{{username}}', passwordTemplate = '{{password}}'): AuthStrategy {
  return {
    kind: 'basic',
    ownedHeaders: ['authorization'],
    ownedQueryParams: [],
    apply(request, secrets) {
      const user = renderHeaderValue(usernameTemplate, secrets);
      if (user.includes(':')) throw new AivaultError('CREDENTIAL_INVALID', 'a basic-auth username cannot contain ":"');
      const pair = `${user}:${renderHeaderValue(passwordTemplate, secrets)}`;
      const encoded = Buffer.from(pair, 'utf8').toString('base64');
      request.headers.set('authorization', `Basic ${encoded}`);
      return [pair, encoded];
    },
  };
}
