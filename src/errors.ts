// Every failure aivault reports carries a stable code. Messages are for people and
// must never contain a secret value: callers build them from names and ids only.

export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  LOCKED: 5,
  INTEGRITY: 6,
  DENIED: 7,
  UPSTREAM: 8,
  UNAVAILABLE: 9,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * Exit codes for answers that are not aivault's failures but that a script branches on: the
 * command did its job, and the answer was no. Apart from the error codes above, so a script
 * tells "the upstream said 401" from "aivault refused".
 */
export const OUTCOME_EXIT = {
  /** invoke, json, markdown: the upstream answered 4xx. */
  UPSTREAM_4XX: { exit: 10, meaning: 'invoke, json, markdown: the upstream answered with a 4xx status (its answer is still printed)' },
  /** invoke, json, markdown: the upstream answered 5xx. */
  UPSTREAM_5XX: { exit: 11, meaning: 'invoke, json, markdown: the upstream answered with a 5xx status (its answer is still printed)' },
  /** secrets compare: the value is not the stored one. */
  NO_MATCH: { exit: 12, meaning: 'secrets compare: the value on stdin is not the stored one' },
} as const;

/** The outcome exit for an upstream status: 0 below 400. */
export function upstreamExit(status: number): number {
  return status >= 500 ? OUTCOME_EXIT.UPSTREAM_5XX.exit : status >= 400 ? OUTCOME_EXIT.UPSTREAM_4XX.exit : EXIT.OK;
}

/**
 * What kind of failure a code is: its process exit code and its HTTP status, together, so
 * the two cannot disagree and a new code needs only its category.
 */
export const CATEGORIES = {
  internal: { exit: EXIT.INTERNAL, status: 500 },
  usage: { exit: EXIT.USAGE, status: 400 },
  /** A value (not the request as sent) over its size limit. */
  value_too_large: { exit: EXIT.USAGE, status: 413 },
  not_found: { exit: EXIT.NOT_FOUND, status: 404 },
  conflict: { exit: EXIT.CONFLICT, status: 409 },
  // The vault cannot be opened or read as it is: nothing the caller sent is at fault.
  locked: { exit: EXIT.LOCKED, status: 503 },
  integrity: { exit: EXIT.INTEGRITY, status: 503 },
  denied: { exit: EXIT.DENIED, status: 403 },
  /** Who is calling is not established: the caller may retry with credentials. */
  unauthenticated: { exit: EXIT.DENIED, status: 401 },
  throttled: { exit: EXIT.DENIED, status: 429 },
  timeout: { exit: EXIT.DENIED, status: 408 },
  too_large: { exit: EXIT.DENIED, status: 413 },
  upstream: { exit: EXIT.UPSTREAM, status: 502 },
  upstream_timeout: { exit: EXIT.UPSTREAM, status: 504 },
  unavailable: { exit: EXIT.UNAVAILABLE, status: 503 },
} as const satisfies Record<string, { exit: ExitCode; status: number }>;

export type Category = keyof typeof CATEGORIES;

/** Stable error codes: each one's category, and a short fixed title for people (RFC 9457 `title`). */
export const ERROR_CODES = {
  INTERNAL_ERROR: { category: 'internal', title: 'Internal error' },
  INVALID_ARGUMENT: { category: 'usage', title: 'Invalid argument' },
  INVALID_NAME: { category: 'usage', title: 'Invalid secret name' },
  INVALID_SCOPE: { category: 'usage', title: 'Invalid scope' },
  SECRET_TOO_LARGE: { category: 'value_too_large', title: 'Secret value too large' },
  SECRET_EMPTY: { category: 'usage', title: 'Secret value empty' },
  SECRET_TOO_SHORT: { category: 'usage', title: 'Secret value too short to scrub' },
  CONFIRMATION_REQUIRED: { category: 'usage', title: 'Confirmation required' },
  SECRET_NOT_FOUND: { category: 'not_found', title: 'Secret not found' },
  SECRET_AMBIGUOUS: { category: 'usage', title: 'Secret reference ambiguous' },
  NO_PREVIOUS_VERSION: { category: 'conflict', title: 'No previous version' },
  SECRET_ALREADY_EXISTS: { category: 'conflict', title: 'Secret already exists' },
  SECRET_PINNED: { category: 'conflict', title: 'Secret pinned to a built-in provider' },
  CONCURRENT_MODIFICATION: { category: 'conflict', title: 'Concurrent modification' },
  VAULT_NOT_INITIALIZED: { category: 'not_found', title: 'Vault not initialized' },
  VAULT_ALREADY_INITIALIZED: { category: 'conflict', title: 'Vault already initialized' },
  VAULT_LOCKED: { category: 'locked', title: 'Vault locked' },
  VAULT_KEY_MISMATCH: { category: 'locked', title: 'Wrong vault key' },
  KEYFILE_INSECURE: { category: 'locked', title: 'Key file insecure' },
  VAULT_DIR_INSECURE: { category: 'locked', title: 'Vault directory insecure' },
  VAULT_DECRYPT_FAILED: { category: 'integrity', title: 'Stored value failed authentication' },
  VAULT_CORRUPTED: { category: 'integrity', title: 'Vault corrupted' },
  /** The vault's state does not match its seal: changed by something other than aivault. */
  VAULT_TAMPERED: { category: 'integrity', title: 'Vault tampered with' },
  VAULT_VERSION_UNSUPPORTED: { category: 'integrity', title: 'Vault version unsupported' },
  STORAGE_UNAVAILABLE: { category: 'unavailable', title: 'Storage unavailable' },
  REGISTRY_INVALID: { category: 'usage', title: 'Provider file invalid' },
  CREDENTIAL_ALREADY_EXISTS: { category: 'conflict', title: 'Credential already exists' },
  CAPABILITY_ALREADY_EXISTS: { category: 'conflict', title: 'Capability already exists' },
  CREDENTIAL_IN_USE: { category: 'conflict', title: 'Credential in use' },
  AGENT_ALREADY_EXISTS: { category: 'conflict', title: 'Agent already exists' },
  OWNER_ALREADY_EXISTS: { category: 'conflict', title: 'Owner already exists' },
  OWNER_NOT_FOUND: { category: 'not_found', title: 'Owner not found' },
  LAST_OWNER: { category: 'conflict', title: 'Last owner' },
  AGENT_NOT_FOUND: { category: 'not_found', title: 'Agent not found' },
  GRANT_NOT_FOUND: { category: 'not_found', title: 'Grant not found' },
  AGENT_UNAUTHENTICATED: { category: 'unauthenticated', title: 'Agent not authenticated' },
  AGENT_REVOKED: { category: 'unauthenticated', title: 'Agent revoked' },
  SIGNATURE_INVALID: { category: 'unauthenticated', title: 'Request signature invalid' },
  REPLAY_DETECTED: { category: 'unauthenticated', title: 'Request replayed' },
  CLOCK_SKEW: { category: 'unauthenticated', title: 'Signer clock skewed' },
  CAPABILITY_NOT_GRANTED: { category: 'denied', title: 'Capability not granted' },
  GRANT_EXPIRED: { category: 'denied', title: 'Grant expired' },
  RATE_LIMITED: { category: 'throttled', title: 'Rate limit reached' },
  TOO_MANY_IN_FLIGHT: { category: 'throttled', title: 'Too many requests in flight' },
  DAEMON_BUSY: { category: 'unavailable', title: 'Daemon busy' },
  REQUEST_TIMEOUT: { category: 'timeout', title: 'Request body timed out' },
  /** The caller closed its connection first: its exchange upstream is cut, and the audit says so. */
  CLIENT_GONE: { category: 'usage', title: 'Caller went away' },
  OWNER_ROUTE: { category: 'denied', title: 'Owner route' },
  ORIGIN_REFUSED: { category: 'denied', title: 'Web page origin refused' },
  APPROVAL_DENIED: { category: 'denied', title: 'Approval denied' },
  APPROVAL_TIMEOUT: { category: 'denied', title: 'Approval timed out' },
  APPROVAL_NOT_FOUND: { category: 'not_found', title: 'Approval not found' },
  APPROVAL_NOT_PENDING: { category: 'conflict', title: 'Approval not pending' },
  DAEMON_UNAVAILABLE: { category: 'unavailable', title: 'Daemon unavailable' },
  PROVIDER_RESERVED: { category: 'conflict', title: 'Provider reserved' },
  AUDIT_CHAIN_BROKEN: { category: 'integrity', title: 'Audit chain broken' },
  AUDIT_UNAVAILABLE: { category: 'unavailable', title: 'Audit log unavailable' },
  ROUTE_NOT_FOUND: { category: 'not_found', title: 'No such route' },
  // Policy denials: the request never left aivault.
  METHOD_NOT_ALLOWED: { category: 'denied', title: 'Method not allowed' },
  PATH_NOT_ALLOWED: { category: 'denied', title: 'Path not allowed' },
  HOST_NOT_ALLOWED: { category: 'denied', title: 'Host not allowed' },
  HOST_REQUIRED: { category: 'denied', title: 'Host required' },
  PRIVATE_ADDRESS_BLOCKED: { category: 'denied', title: 'Private address blocked' },
  INSECURE_SCHEME: { category: 'denied', title: 'Insecure scheme' },
  MALFORMED_PATH: { category: 'denied', title: 'Malformed path' },
  MALFORMED_URL: { category: 'denied', title: 'Malformed URL' },
  MALFORMED_HEADER: { category: 'denied', title: 'Malformed header' },
  CREDENTIAL_INVALID: { category: 'denied', title: 'Credential material invalid' },
  REQUEST_TOO_LARGE: { category: 'too_large', title: 'Request too large' },
  // Upstream failures: the request was allowed, the upstream did not answer well.
  UPSTREAM_TIMEOUT: { category: 'upstream_timeout', title: 'Upstream timed out' },
  UPSTREAM_UNREACHABLE: { category: 'upstream', title: 'Upstream unreachable' },
  UPSTREAM_TLS_ERROR: { category: 'upstream', title: 'Upstream TLS error' },
  UPSTREAM_ERROR: { category: 'upstream', title: 'Upstream error' },
  RESPONSE_TOO_LARGE: { category: 'upstream', title: 'Response too large' },
  OAUTH_REFRESH_FAILED: { category: 'upstream', title: 'OAuth token refresh failed' },
  ACQUIRE_NOT_JSON: { category: 'upstream', title: 'Flow answer not JSON' },
  ACQUIRE_FIELD_MISSING: { category: 'upstream', title: 'Flow answer lacks the field' },
  FLOW_OVERWRITE_REFUSED: { category: 'conflict', title: 'Flow overwrite refused' },
  FLOW_NOT_FOUND: { category: 'not_found', title: 'Flow not found' },
  REGISTRY_TAMPERED: { category: 'integrity', title: 'Registry tampered with' },
  PROVIDER_NOT_FOUND: { category: 'not_found', title: 'Provider not found' },
  CAPABILITY_NOT_FOUND: { category: 'not_found', title: 'Capability not found' },
  CREDENTIAL_NOT_FOUND: { category: 'not_found', title: 'Credential not found' },
  CREDENTIAL_NOT_READY: { category: 'denied', title: 'Credential not ready' },
  SECRET_OUT_OF_SCOPE: { category: 'denied', title: 'Secret out of scope' },
  WEBSOCKET_NOT_ALLOWED: { category: 'denied', title: 'WebSocket not allowed' },
  GROUP_ALREADY_ATTACHED: { category: 'conflict', title: 'Group already attached' },
  GROUP_NOT_ATTACHED: { category: 'not_found', title: 'Group not attached' },
  // What the operating system refuses when the daemon listens or writes its files (os-errors.ts).
  ADDRESS_IN_USE: { category: 'conflict', title: 'Address in use' },
  ADDRESS_UNAVAILABLE: { category: 'usage', title: 'Address not available' },
  PERMISSION_DENIED: { category: 'usage', title: 'Permission denied' },
  PATH_TOO_LONG: { category: 'usage', title: 'Path too long' },
  DISK_FULL: { category: 'unavailable', title: 'Disk full' },
} as const satisfies Record<string, { category: Category; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** The process exit code and HTTP status of a code: its category's. */
export function categoryOf(code: ErrorCode): { exit: ExitCode; status: number } {
  return CATEGORIES[ERROR_CODES[code].category];
}

/** The RFC 9457 problem type of a code: its section of docs/errors.md, published under this base. */
export const PROBLEM_TYPE_BASE = 'https://aivault.dev/errors/';

export function problemType(code: ErrorCode): string {
  return PROBLEM_TYPE_BASE + code.toLowerCase().replaceAll('_', '-');
}

export class AivaultError extends Error {
  readonly code: ErrorCode;
  /**
   * The argument at fault, by its field name in the API (`tokenEndpoint`, `scope`): the core
   * names fields, never CLI flags; the CLI says which flag that field is when it prints.
   */
  readonly field: string | undefined;
  override readonly name = 'AivaultError';

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.field = options?.field;
  }

  get exitCode(): ExitCode {
    return categoryOf(this.code).exit;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** A refusal that passes with time: answered with Retry-After (seconds). */
export class RetryLaterError extends AivaultError {
  readonly retryAfter: number;
  constructor(code: ErrorCode, message: string, retryAfter: number) {
    super(code, message);
    this.retryAfter = retryAfter;
  }
}

export function isAivaultError(err: unknown, code?: ErrorCode): err is AivaultError {
  return err instanceof AivaultError && (code === undefined || err.code === code);
}

/** What kind of failure `err` was, for a log line: its class name only, never its message (which may quote input). */
export function errorKind(err: unknown): string {
  return err instanceof Error ? err.constructor.name : typeof err;
}
