// The HTTP status each error code answers with on the daemon's API (derived from the
// code's category, so a new code cannot be forgotten), and the answer a
// refusal gets on any transport (a response, or an upgrade socket that never switched).

import { ERROR_CODES, EXIT, RetryLaterError, type AivaultError, type ErrorCode, type ExitCode } from '../errors.ts';

/** Each category's status: the code table in errors.ts says which category a code is in. */
const BY_CATEGORY: Record<ExitCode, number> = {
  [EXIT.OK]: 200,
  [EXIT.INTERNAL]: 500,
  [EXIT.USAGE]: 400,
  [EXIT.NOT_FOUND]: 404,
  [EXIT.CONFLICT]: 409,
  // The vault cannot be opened or read as it is: nothing the caller sent is at fault.
  [EXIT.LOCKED]: 503,
  [EXIT.INTEGRITY]: 503,
  [EXIT.DENIED]: 403,
  [EXIT.UPSTREAM]: 502,
  [EXIT.UNAVAILABLE]: 503,
};

/** The only codes whose status HTTP says more precisely than their category. */
const EXCEPTIONS: Partial<Record<ErrorCode, number>> = {
  // Who is calling is not established: the caller may retry with credentials.
  AGENT_UNAUTHENTICATED: 401,
  AGENT_REVOKED: 401,
  SIGNATURE_INVALID: 401,
  REPLAY_DETECTED: 401,
  CLOCK_SKEW: 401,
  RATE_LIMITED: 429,
  TOO_MANY_IN_FLIGHT: 429,
  REQUEST_TIMEOUT: 408,
  REQUEST_TOO_LARGE: 413,
  UPSTREAM_TIMEOUT: 504,
};

export function httpStatus(code: ErrorCode): number {
  return EXCEPTIONS[code] ?? BY_CATEGORY[ERROR_CODES[code]];
}

/** A refusal's status, headers and JSON body. */
export function refusal(err: AivaultError): { status: number; headers: Record<string, string>; body: string } {
  const status = httpStatus(err.code);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    // Tells a denial by aivault apart from an upstream's own error response.
    'x-aivault-error': err.code,
  };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="aivault"';
  if (err instanceof RetryLaterError) headers['retry-after'] = String(err.retryAfter);
  return { status, headers, body: JSON.stringify({ error: err.toJSON() }) };
}
