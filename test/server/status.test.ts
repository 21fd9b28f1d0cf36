// Every error code answers with the HTTP status of its category; only the listed exceptions differ.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, EXIT, type ErrorCode } from '../../src/errors.ts';
import { httpStatus } from '../../src/server/status.ts';

const CATEGORY_STATUS = new Map<number, number>([
  [EXIT.INTERNAL, 500],
  [EXIT.USAGE, 400],
  [EXIT.NOT_FOUND, 404],
  [EXIT.CONFLICT, 409],
  [EXIT.LOCKED, 503],
  [EXIT.INTEGRITY, 503],
  [EXIT.DENIED, 403],
  [EXIT.UPSTREAM, 502],
  [EXIT.UNAVAILABLE, 503],
]);
const EXCEPTIONS = new Map<ErrorCode, number>([
  ['AGENT_UNAUTHENTICATED', 401],
  ['AGENT_REVOKED', 401],
  ['SIGNATURE_INVALID', 401],
  ['REPLAY_DETECTED', 401],
  ['CLOCK_SKEW', 401],
  ['RATE_LIMITED', 429],
  ['TOO_MANY_IN_FLIGHT', 429],
  ['REQUEST_TIMEOUT', 408],
  ['REQUEST_TOO_LARGE', 413],
  ['UPSTREAM_TIMEOUT', 504],
]);

describe('HTTP status', () => {
  it('walks every code: its category decides, except for the few HTTP names more precisely', () => {
    for (const [code, category] of Object.entries(ERROR_CODES) as Array<[ErrorCode, number]>) {
      const want = EXCEPTIONS.get(code) ?? CATEGORY_STATUS.get(category);
      assert.equal(httpStatus(code), want, code);
    }
  });

  it('the owner-side codes the attacker saw as 500 are not server errors', () => {
    for (const code of ['SECRET_NOT_FOUND', 'AGENT_NOT_FOUND', 'SECRET_ALREADY_EXISTS', 'LAST_OWNER', 'CONFIRMATION_REQUIRED', 'VAULT_LOCKED', 'INVALID_NAME'] as const) {
      assert.notEqual(httpStatus(code), 500, code);
    }
  });
});
