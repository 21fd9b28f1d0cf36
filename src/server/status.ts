// The HTTP status each error code answers with on the daemon's API, and the answer a
// refusal gets on any transport (a response, or an upgrade socket that never switched).

import { RetryLaterError, type AivaultError, type ErrorCode } from '../errors.ts';

const STATUS: Partial<Record<ErrorCode, number>> = {
  AGENT_UNAUTHENTICATED: 401,
  AGENT_REVOKED: 401,
  SIGNATURE_INVALID: 401,
  REPLAY_DETECTED: 401,
  CLOCK_SKEW: 401,
  RATE_LIMITED: 429,
  TOO_MANY_IN_FLIGHT: 429,
  DAEMON_BUSY: 503,
  REQUEST_TIMEOUT: 408,
  INVALID_ARGUMENT: 400,
  REQUEST_TOO_LARGE: 413,
  UPSTREAM_TIMEOUT: 504,
  UPSTREAM_UNREACHABLE: 502,
  UPSTREAM_TLS_ERROR: 502,
  UPSTREAM_ERROR: 502,
  RESPONSE_TOO_LARGE: 502,
  OAUTH_REFRESH_FAILED: 502,
  STORAGE_UNAVAILABLE: 503,
  AUDIT_UNAVAILABLE: 503,
  VAULT_CORRUPTED: 503,
  VAULT_DECRYPT_FAILED: 503,
  INTERNAL_ERROR: 500,
};

const FORBIDDEN = new Set<ErrorCode>([
  'CAPABILITY_NOT_FOUND',
  'CAPABILITY_NOT_GRANTED',
  'GRANT_EXPIRED',
  'METHOD_NOT_ALLOWED',
  'PATH_NOT_ALLOWED',
  'HOST_NOT_ALLOWED',
  'HOST_REQUIRED',
  'PRIVATE_ADDRESS_BLOCKED',
  'INSECURE_SCHEME',
  'MALFORMED_PATH',
  'MALFORMED_URL',
  'MALFORMED_HEADER',
  'CREDENTIAL_NOT_READY',
  'SECRET_TOO_SHORT',
  'SECRET_OUT_OF_SCOPE',
  'WEBSOCKET_NOT_ALLOWED',
  'CREDENTIAL_INVALID',
  'OWNER_ROUTE',
  'ORIGIN_REFUSED',
  'APPROVAL_DENIED',
  'APPROVAL_TIMEOUT',
]);

export function httpStatus(code: ErrorCode): number {
  return STATUS[code] ?? (FORBIDDEN.has(code) ? 403 : 500);
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
