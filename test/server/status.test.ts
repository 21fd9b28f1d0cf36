// Every error code's HTTP status and exit code, pinned: both come from its category (errors.ts),
// so a change of category shows here. A new code must be added to this list deliberately.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AivaultError, ERROR_CODES, RetryLaterError, categoryOf, type ErrorCode } from '../../src/errors.ts';
import { refusal } from '../../src/server/status.ts';

const PINNED: Record<string, ErrorCode[]> = {
  '500 1': ['INTERNAL_ERROR'],
  '400 2': ['ADDRESS_UNAVAILABLE', 'PERMISSION_DENIED', 'PATH_TOO_LONG', 'CLIENT_GONE', 'INVALID_ARGUMENT', 'INVALID_NAME', 'INVALID_SCOPE', 'SECRET_EMPTY', 'SECRET_TOO_SHORT', 'CONFIRMATION_REQUIRED', 'SECRET_AMBIGUOUS', 'REGISTRY_INVALID'],
  // A value over its limit is 413 (it was 400 on the daemon and 413 on the ingest endpoint).
  '413 2': ['SECRET_TOO_LARGE'],
  '404 3': ['SECRET_NOT_FOUND', 'VAULT_NOT_INITIALIZED', 'OWNER_NOT_FOUND', 'AGENT_NOT_FOUND', 'GRANT_NOT_FOUND', 'APPROVAL_NOT_FOUND', 'FLOW_NOT_FOUND', 'PROVIDER_NOT_FOUND', 'CAPABILITY_NOT_FOUND', 'CREDENTIAL_NOT_FOUND', 'GROUP_NOT_ATTACHED', 'ROUTE_NOT_FOUND'],
  '409 4': ['NO_PREVIOUS_VERSION', 'SECRET_ALREADY_EXISTS', 'SECRET_PINNED', 'CONCURRENT_MODIFICATION', 'VAULT_ALREADY_INITIALIZED', 'CREDENTIAL_ALREADY_EXISTS', 'CAPABILITY_ALREADY_EXISTS', 'CREDENTIAL_IN_USE', 'AGENT_ALREADY_EXISTS', 'OWNER_ALREADY_EXISTS', 'LAST_OWNER', 'APPROVAL_NOT_PENDING', 'PROVIDER_RESERVED', 'FLOW_OVERWRITE_REFUSED', 'GROUP_ALREADY_ATTACHED', 'ADDRESS_IN_USE'],
  '503 5': ['VAULT_LOCKED', 'VAULT_KEY_MISMATCH', 'KEYFILE_INSECURE', 'VAULT_DIR_INSECURE'],
  '503 6': ['VAULT_DECRYPT_FAILED', 'VAULT_CORRUPTED', 'VAULT_TAMPERED', 'VAULT_VERSION_UNSUPPORTED', 'AUDIT_CHAIN_BROKEN', 'REGISTRY_TAMPERED'],
  '503 9': ['STORAGE_UNAVAILABLE', 'DAEMON_BUSY', 'DAEMON_UNAVAILABLE', 'AUDIT_UNAVAILABLE', 'DISK_FULL'],
  '401 7': ['AGENT_UNAUTHENTICATED', 'AGENT_REVOKED', 'SIGNATURE_INVALID', 'REPLAY_DETECTED', 'CLOCK_SKEW'],
  '403 7': ['CAPABILITY_NOT_GRANTED', 'GRANT_EXPIRED', 'OWNER_ROUTE', 'ORIGIN_REFUSED', 'APPROVAL_DENIED', 'APPROVAL_TIMEOUT', 'METHOD_NOT_ALLOWED', 'PATH_NOT_ALLOWED', 'HOST_NOT_ALLOWED', 'HOST_REQUIRED', 'PRIVATE_ADDRESS_BLOCKED', 'INSECURE_SCHEME', 'MALFORMED_PATH', 'MALFORMED_URL', 'MALFORMED_HEADER', 'CREDENTIAL_INVALID', 'CREDENTIAL_NOT_READY', 'SECRET_OUT_OF_SCOPE', 'WEBSOCKET_NOT_ALLOWED'],
  '429 7': ['RATE_LIMITED', 'TOO_MANY_IN_FLIGHT'],
  '408 7': ['REQUEST_TIMEOUT'],
  '413 7': ['REQUEST_TOO_LARGE'],
  '504 8': ['UPSTREAM_TIMEOUT'],
  '502 8': ['UPSTREAM_UNREACHABLE', 'UPSTREAM_TLS_ERROR', 'UPSTREAM_ERROR', 'RESPONSE_TOO_LARGE', 'OAUTH_REFRESH_FAILED', 'ACQUIRE_NOT_JSON', 'ACQUIRE_FIELD_MISSING'],
};

describe('HTTP status and exit code', () => {
  it('walks every code: its category gives the status a refusal answers with and the exit code the CLI returns', () => {
    const pinned = new Map(Object.entries(PINNED).flatMap(([pair, codes]) => codes.map((c) => [c, pair] as const)));
    assert.deepEqual([...pinned.keys()].sort(), Object.keys(ERROR_CODES).sort(), 'every code is pinned, once');
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const err = new AivaultError(code, 'm');
      assert.equal(`${refusal(err).status} ${err.exitCode}`, pinned.get(code), code);
      assert.equal(refusal(err).status, categoryOf(code).status, code);
    }
  });

  it('the owner-side codes the attacker saw as 500 are not server errors', () => {
    for (const code of ['SECRET_NOT_FOUND', 'AGENT_NOT_FOUND', 'SECRET_ALREADY_EXISTS', 'LAST_OWNER', 'CONFIRMATION_REQUIRED', 'VAULT_LOCKED', 'INVALID_NAME'] as const) {
      assert.notEqual(categoryOf(code).status, 500, code);
    }
  });

  it('a 401 says how to authenticate, a refusal that passes with time says when to retry', () => {
    assert.equal(refusal(new AivaultError('SIGNATURE_INVALID', 'm')).headers['www-authenticate'], 'Bearer realm="aivault"');
    assert.equal(refusal(new AivaultError('CAPABILITY_NOT_GRANTED', 'm')).headers['www-authenticate'], undefined);
    const later = refusal(new RetryLaterError('RATE_LIMITED', 'rate limit reached', 7));
    assert.deepEqual([later.status, later.headers['retry-after']], [429, '7']);
  });
});

describe('refusal bodies', () => {
  it('the API answers with an RFC 9457 problem document: type, title, status, detail, code, field', () => {
    const r = refusal(new AivaultError('INVALID_SCOPE', 'workspaceId must be 1-64 lower-case letters', { field: 'workspaceId' }));
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.headers['x-aivault-error'], 'INVALID_SCOPE');
    assert.deepEqual(JSON.parse(r.body), {
      type: 'https://aivault.dev/errors/invalid-scope',
      title: 'Invalid scope',
      status: 400,
      detail: 'workspaceId must be 1-64 lower-case letters',
      code: 'INVALID_SCOPE',
      field: 'workspaceId',
    });
    assert.equal('field' in JSON.parse(refusal(new AivaultError('LAST_OWNER', 'm')).body), false, 'no field when none is at fault');
  });

  it("the gateway keeps the body providers' SDKs read (error.message, error.type), as JSON, the problem beside it", () => {
    const r = refusal(new AivaultError('CAPABILITY_NOT_GRANTED', 'no granted openai capability allows POST /v1/x'), 'gateway');
    assert.equal(r.headers['content-type'], 'application/json');
    const body = JSON.parse(r.body) as { error: { message: string; type: string; code: string }; type: string; status: number; detail: string; code: string };
    assert.deepEqual(body.error, { message: 'no granted openai capability allows POST /v1/x', type: 'aivault_error', code: 'CAPABILITY_NOT_GRANTED' });
    assert.deepEqual([body.type, body.status, body.detail, body.code], ['https://aivault.dev/errors/capability-not-granted', 403, 'no granted openai capability allows POST /v1/x', 'CAPABILITY_NOT_GRANTED']);
  });
});
