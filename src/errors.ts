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

/** Stable error codes and the process exit code each maps to. */
export const ERROR_CODES = {
  INTERNAL_ERROR: EXIT.INTERNAL,
  INVALID_ARGUMENT: EXIT.USAGE,
  INVALID_NAME: EXIT.USAGE,
  INVALID_SCOPE: EXIT.USAGE,
  SECRET_TOO_LARGE: EXIT.USAGE,
  SECRET_EMPTY: EXIT.USAGE,
  SECRET_TOO_SHORT: EXIT.USAGE,
  CONFIRMATION_REQUIRED: EXIT.USAGE,
  SECRET_NOT_FOUND: EXIT.NOT_FOUND,
  SECRET_AMBIGUOUS: EXIT.USAGE,
  NO_PREVIOUS_VERSION: EXIT.CONFLICT,
  SECRET_ALREADY_EXISTS: EXIT.CONFLICT,
  SECRET_PINNED: EXIT.CONFLICT,
  CONCURRENT_MODIFICATION: EXIT.CONFLICT,
  VAULT_NOT_INITIALIZED: EXIT.NOT_FOUND,
  VAULT_ALREADY_INITIALIZED: EXIT.CONFLICT,
  VAULT_LOCKED: EXIT.LOCKED,
  VAULT_KEY_MISMATCH: EXIT.LOCKED,
  KEYFILE_INSECURE: EXIT.LOCKED,
  VAULT_DIR_INSECURE: EXIT.LOCKED,
  VAULT_DECRYPT_FAILED: EXIT.INTEGRITY,
  VAULT_CORRUPTED: EXIT.INTEGRITY,
  /** The vault's state does not match its seal: changed by something other than aivault. */
  VAULT_TAMPERED: EXIT.INTEGRITY,
  VAULT_VERSION_UNSUPPORTED: EXIT.INTEGRITY,
  STORAGE_UNAVAILABLE: EXIT.UNAVAILABLE,
  REGISTRY_INVALID: EXIT.USAGE,
  CREDENTIAL_ALREADY_EXISTS: EXIT.CONFLICT,
  CAPABILITY_ALREADY_EXISTS: EXIT.CONFLICT,
  CREDENTIAL_IN_USE: EXIT.CONFLICT,
  AGENT_ALREADY_EXISTS: EXIT.CONFLICT,
  OWNER_ALREADY_EXISTS: EXIT.CONFLICT,
  OWNER_NOT_FOUND: EXIT.NOT_FOUND,
  LAST_OWNER: EXIT.CONFLICT,
  AGENT_NOT_FOUND: EXIT.NOT_FOUND,
  GRANT_NOT_FOUND: EXIT.NOT_FOUND,
  AGENT_UNAUTHENTICATED: EXIT.DENIED,
  AGENT_REVOKED: EXIT.DENIED,
  SIGNATURE_INVALID: EXIT.DENIED,
  REPLAY_DETECTED: EXIT.DENIED,
  CLOCK_SKEW: EXIT.DENIED,
  CAPABILITY_NOT_GRANTED: EXIT.DENIED,
  GRANT_EXPIRED: EXIT.DENIED,
  RATE_LIMITED: EXIT.DENIED,
  TOO_MANY_IN_FLIGHT: EXIT.DENIED,
  DAEMON_BUSY: EXIT.UNAVAILABLE,
  REQUEST_TIMEOUT: EXIT.DENIED,
  OWNER_ROUTE: EXIT.DENIED,
  ORIGIN_REFUSED: EXIT.DENIED,
  APPROVAL_DENIED: EXIT.DENIED,
  APPROVAL_TIMEOUT: EXIT.DENIED,
  APPROVAL_NOT_FOUND: EXIT.NOT_FOUND,
  APPROVAL_NOT_PENDING: EXIT.CONFLICT,
  DAEMON_UNAVAILABLE: EXIT.UNAVAILABLE,
  PROVIDER_RESERVED: EXIT.CONFLICT,
  AUDIT_CHAIN_BROKEN: EXIT.INTEGRITY,
  AUDIT_UNAVAILABLE: EXIT.UNAVAILABLE,
  // Policy denials: the request never left aivault.
  METHOD_NOT_ALLOWED: EXIT.DENIED,
  PATH_NOT_ALLOWED: EXIT.DENIED,
  HOST_NOT_ALLOWED: EXIT.DENIED,
  HOST_REQUIRED: EXIT.DENIED,
  PRIVATE_ADDRESS_BLOCKED: EXIT.DENIED,
  INSECURE_SCHEME: EXIT.DENIED,
  MALFORMED_PATH: EXIT.DENIED,
  MALFORMED_URL: EXIT.DENIED,
  MALFORMED_HEADER: EXIT.DENIED,
  CREDENTIAL_INVALID: EXIT.DENIED,
  REQUEST_TOO_LARGE: EXIT.DENIED,
  // Upstream failures: the request was allowed, the upstream did not answer well.
  UPSTREAM_TIMEOUT: EXIT.UPSTREAM,
  UPSTREAM_UNREACHABLE: EXIT.UPSTREAM,
  UPSTREAM_TLS_ERROR: EXIT.UPSTREAM,
  UPSTREAM_ERROR: EXIT.UPSTREAM,
  RESPONSE_TOO_LARGE: EXIT.UPSTREAM,
  OAUTH_REFRESH_FAILED: EXIT.UPSTREAM,
  ACQUIRE_NOT_JSON: EXIT.UPSTREAM,
  ACQUIRE_FIELD_MISSING: EXIT.UPSTREAM,
  FLOW_OVERWRITE_REFUSED: EXIT.CONFLICT,
  FLOW_NOT_FOUND: EXIT.NOT_FOUND,
  REGISTRY_TAMPERED: EXIT.INTEGRITY,
  PROVIDER_NOT_FOUND: EXIT.NOT_FOUND,
  CAPABILITY_NOT_FOUND: EXIT.NOT_FOUND,
  CREDENTIAL_NOT_FOUND: EXIT.NOT_FOUND,
  CREDENTIAL_NOT_READY: EXIT.DENIED,
  SECRET_OUT_OF_SCOPE: EXIT.DENIED,
  WEBSOCKET_NOT_ALLOWED: EXIT.DENIED,
  GROUP_ALREADY_ATTACHED: EXIT.CONFLICT,
  GROUP_NOT_ATTACHED: EXIT.NOT_FOUND,
} as const satisfies Record<string, ExitCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

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
    return ERROR_CODES[this.code];
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
