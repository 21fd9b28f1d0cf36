// A request body given as a JSON value (agents and LLMs hold objects, not JSON text): the
// daemon API, the SDK and the MCP tools take `json` beside `body` and `bodyBase64`. It is
// serialised here and then goes through the broker like any body, method-override check
// included.

import { AivaultError } from '../errors.ts';

export interface BodyFields {
  body?: string | undefined;
  bodyBase64?: string | undefined;
  json?: unknown;
}

/**
 * The request's body, and its headers with `content-type: application/json` added for a
 * `json` body whose caller typed none. At most one of the three fields may be given.
 */
export function requestBody(fields: BodyFields, headers: Array<[string, string]>): { body?: Buffer; headers: Array<[string, string]> } {
  const given = (['body', 'bodyBase64', 'json'] as const).filter((k) => fields[k] !== undefined);
  if (given.length > 1) throw new AivaultError('INVALID_ARGUMENT', `give one of body, bodyBase64 or json, not ${given.join(' and ')}`, { field: given[1]! });
  if (fields.body !== undefined) return { body: Buffer.from(fields.body, 'utf8'), headers };
  if (fields.bodyBase64 !== undefined) return { body: Buffer.from(fields.bodyBase64, 'base64'), headers };
  if (fields.json === undefined) return { headers };
  const typed = headers.some(([k]) => k.toLowerCase() === 'content-type');
  return { body: Buffer.from(JSON.stringify(fields.json), 'utf8'), headers: typed ? headers : [...headers, ['content-type', 'application/json']] };
}
