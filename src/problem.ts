// The RFC 9457 problem document aivault answers a refusal with, and the reading of one back
// into an AivaultError (the SDK's side). `detail` is the error's message: built from names
// and ids only, never a secret value.

import { AivaultError, categoryOf, ERROR_CODES, isErrorCode, problemType, type ErrorCode } from './errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  /** The argument at fault, by its API name. */
  field?: string;
}

export function problemOf(err: AivaultError): Problem {
  return {
    type: problemType(err.code),
    title: ERROR_CODES[err.code].title,
    status: categoryOf(err.code).status,
    detail: err.message,
    code: err.code,
    ...(err.field !== undefined ? { field: err.field } : {}),
  };
}

/**
 * A refusal's body (and its `x-aivault-error` header) as an error: a problem document, or the
 * `{error: {code, message}}` an older daemon answers with. An unknown code reads as INTERNAL_ERROR.
 */
export function errorFromRefusal(body: string, codeHeader: unknown, fallback: string): AivaultError {
  let doc: { code?: unknown; detail?: unknown; field?: unknown; error?: { code?: unknown; message?: unknown } } = {};
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object') doc = parsed;
  } catch {
    // not JSON: the header and the fallback say what there is
  }
  const legacy = doc.error !== null && typeof doc.error === 'object' ? doc.error : {};
  const code = [doc.code, legacy.code, codeHeader].find((c): c is string => typeof c === 'string');
  const message = [doc.detail, legacy.message].find((m): m is string => typeof m === 'string') ?? fallback;
  const field = typeof doc.field === 'string' ? doc.field : undefined;
  return new AivaultError(code !== undefined && isErrorCode(code) ? code : 'INTERNAL_ERROR', message, field !== undefined ? { field } : undefined);
}
