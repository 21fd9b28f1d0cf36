// The answer a refusal gets on any transport (a response, or an upgrade socket that never
// switched): its status (the code's category, errors.ts), headers, and body. The daemon's own
// API answers with an RFC 9457 problem document; the gateway, whose callers are providers'
// SDKs, with the `{error: {message, type, code}}` those SDKs read, the problem's fields beside it.

import { RetryLaterError, type AivaultError } from '../errors.ts';
import { PROBLEM_CONTENT_TYPE, problemOf } from '../problem.ts';

/** Who reads the refusal: a client of aivault's API, or a provider's SDK through the gateway. */
export type RefusalAudience = 'api' | 'gateway';

/** A refusal's status, headers and JSON body. */
export function refusal(err: AivaultError, audience: RefusalAudience = 'api'): { status: number; headers: Record<string, string>; body: string } {
  const problem = problemOf(err);
  const headers: Record<string, string> = {
    'content-type': audience === 'api' ? PROBLEM_CONTENT_TYPE : 'application/json',
    // Tells a denial by aivault apart from an upstream's own error response.
    'x-aivault-error': err.code,
  };
  if (problem.status === 401) headers['www-authenticate'] = 'Bearer realm="aivault"';
  if (err instanceof RetryLaterError) headers['retry-after'] = String(err.retryAfter);
  // OpenAI's and Anthropic's SDKs show `error.message` and `error.type`.
  const body = audience === 'api' ? problem : { error: { message: err.message, type: 'aivault_error', code: err.code }, ...problem };
  return { status: problem.status, headers, body: JSON.stringify(body) };
}
