// Picks the strategy module for an `auth` configuration.

import { AivaultError } from '../errors.ts';
import { authKind, type AuthConfig } from '../registry/types.ts';
import { awsSigV4Strategy } from './aws-sigv4.ts';
import { basicStrategy } from './basic.ts';
import { headerStrategy } from './header.ts';
import { mtlsStrategy } from './mtls.ts';
import { oauth2Strategy, type TokenSource } from './oauth2.ts';
import { hmacStrategy } from './hmac.ts';
import { pathStrategy } from './path.ts';
import { queryStrategy } from './query.ts';
import type { AuthStrategy } from './types.ts';

export type { AuthStrategy, OutboundRequest } from './types.ts';

export interface StrategyContext {
  /** Where an o_auth2 strategy gets its access tokens. */
  tokens?: TokenSource;
}

export function createStrategy(auth: AuthConfig, context: StrategyContext = {}): AuthStrategy {
  if (auth === 'basic') return basicStrategy();
  if (auth === 'mtls') return mtlsStrategy();
  if (typeof auth === 'object') {
    if ('header' in auth) return headerStrategy([auth.header], 'header');
    if ('multi_header' in auth) return headerStrategy(auth.multi_header, 'multi_header');
    if ('query' in auth) return queryStrategy([{ param_name: auth.query.param_name, value_template: auth.query.value_template ?? '{{secret}}' }], 'query');
    if ('multi_query' in auth) return queryStrategy(auth.multi_query, 'multi_query');
    if ('path' in auth) return pathStrategy(auth.path.prefix_template);
    if ('basic' in auth) return basicStrategy(auth.basic.username_template, auth.basic.password_template);
    if ('hmac' in auth) return hmacStrategy(auth.hmac);
    if ('aws_sig_v4' in auth) return awsSigV4Strategy(auth.aws_sig_v4);
    if ('o_auth2' in auth && context.tokens) return oauth2Strategy(context.tokens);
  }
  throw new AivaultError('CREDENTIAL_NOT_READY', `the ${authKind(auth)} strategy is not available in this build yet`);
}
