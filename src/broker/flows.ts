// Secret flows: owner-defined HTTP exchanges that send a secret (send_secret), obtain one
// into the vault without the agent ever seeing it (acquire_secret), or both
// (bidirectional_secret). What the agent gets back from an acquire is only a redacted
// shape (acquiredShape): never a value or key the upstream chose.

import { AivaultError } from '../errors.ts';
import type { FlowRecord } from '../storage/types.ts';
import type { Vault } from '../vault/vault.ts';
import type { Scrubber } from './scrub/scrubber.ts';

/** Built-in acquire kinds: which field holds the secret. */
export const FLOW_KINDS: Record<string, { storeField: string }> = {
  'oauth_token_response.access_token': { storeField: 'access_token' },
  'oauth_token_response.refresh_token': { storeField: 'refresh_token' },
  'openid_token_response.id_token': { storeField: 'id_token' },
};

/** The most a flow's request body, and its decoded answer, may hold. */
export const FLOW_MAX_BYTES = 1024 * 1024;

/** Every value replaced by its type; every key passed through `key` (which scrubs it). */
export function redactShape(value: unknown, key: (k: string) => string = (k) => k): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? [] : [redactShape(value[0], key)];
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[key(k)] = redactShape(v, key);
    return out;
  }
  return typeof value;
}

/** The token response fields (RFC 6749 §5.1, OpenID Connect) an acquire shape may name. */
const TOKEN_RESPONSE_FIELDS = new Set(['access_token', 'refresh_token', 'id_token', 'token_type', 'expires_in', 'scope']);
/** Token types shown as they are (RFC 6750, RFC 9449, RFC 8693); any other is just "string". */
const TOKEN_TYPES = /^(bearer|dpop|mac|n_a)$/i;
export const OTHER_FIELDS = '(other fields)';

/**
 * What an acquire shows of the answer that carried the new secret. The upstream chose every
 * key and value, and any of them may be derived from the secret (its hex, all but its last
 * character), which no scrubber recognises. So nothing it chose is echoed: only the fields of
 * a token response and the flow's own field are named, each as its type; `token_type` from a
 * fixed vocabulary and `expires_in` as a number are the only values; other fields are counted.
 */
export function acquiredShape(json: Record<string, unknown>, storeField: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let others = 0;
  for (const [k, v] of Object.entries(json)) {
    if (!TOKEN_RESPONSE_FIELDS.has(k) && k !== storeField) {
      others++;
      continue;
    }
    if (k === 'token_type' && typeof v === 'string' && TOKEN_TYPES.test(v)) out[k] = v;
    else if (k === 'expires_in' && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= 10 * 365 * 86400) out[k] = v;
    else out[k] = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
  }
  if (others > 0) out[OTHER_FIELDS] = others;
  return out;
}

export interface FlowResult {
  flow: string;
  mode: FlowRecord['mode'];
  responseStatus: number;
  contentType: string | null;
  /** send_secret + passthrough: the scrubbed body. */
  body?: string;
  /** shape_only, and every acquire: the redacted shape. */
  responseShape?: unknown;
  /** acquire: where the secret went. */
  alias?: string;
  status?: 'stored';
}

/** Whether a flow obtains a secret from its answer (and so shows only the acquired shape). */
export function acquires(flow: FlowRecord): boolean {
  return flow.mode !== 'send_secret';
}

/** The media type of an upstream's content type (no parameters, which it could fill with anything), scrubbed. */
function mediaType(value: unknown, scrubber: Scrubber): string | null {
  const m = typeof value === 'string' ? /^\s*([A-Za-z0-9!#$&^_.+-]{1,63}\/[A-Za-z0-9!#$&^_.+-]{1,63})\s*(;|$)/.exec(value) : null;
  return m ? scrubber.scrubText(m[1]!.toLowerCase()) : null;
}

/** The shape of a non-acquire answer: JSON redacted to types with scrubbed keys, or the kind and length of text. */
function shapeOfText(text: string, scrubber: Scrubber): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { type: 'text', length: text.length };
  }
  return redactShape(json, (k) => scrubber.scrubText(k));
}

/**
 * What the caller gets of a flow's answer. `body` is the response stage's output: scrubbed
 * for a send, as sent for an acquire (whose secret is read from it and stored by `store`, and
 * of which only the acquired shape is shown).
 */
export async function flowResult(flow: FlowRecord, answer: { status: number; contentType: unknown; body: Buffer }, scrubber: Scrubber, store: (value: string) => Promise<void>): Promise<FlowResult> {
  const text = answer.body.toString('utf8');
  const result: FlowResult = { flow: flow.id, mode: flow.mode, responseStatus: answer.status, contentType: mediaType(answer.contentType, scrubber) };
  if (!acquires(flow)) {
    if (flow.visibility === 'passthrough') result.body = text;
    else result.responseShape = shapeOfText(text, scrubber);
    return result;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AivaultError('ACQUIRE_NOT_JSON', `the flow's target answered HTTP ${answer.status} with a body that is not JSON; nothing was stored`);
  }
  const value = json !== null && typeof json === 'object' ? (json as Record<string, unknown>)[flow.storeField!] : undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new AivaultError('ACQUIRE_FIELD_MISSING', `the flow's target answered HTTP ${answer.status} without a "${flow.storeField}" string; nothing was stored`);
  }
  await store(value);
  result.alias = flow.storeAlias!;
  result.status = 'stored';
  result.responseShape = acquiredShape(json as Record<string, unknown>, flow.storeField!);
  return result;
}

/** Stores an acquired secret under the flow's alias: a new secret, or a rotation if the flow may overwrite. */
export async function storeAcquired(vault: Vault, flow: FlowRecord, value: string): Promise<void> {
  const existing = await vault.storage.listSecrets({ name: flow.storeAlias!, scope: 'global' });
  if (existing.length > 0) {
    if (!flow.overwrite) throw new AivaultError('FLOW_OVERWRITE_REFUSED', `${flow.storeAlias} already exists and the flow may not overwrite it; nothing was stored`);
    await vault.rotateSecret(existing[0]!.id, Buffer.from(value, 'utf8'));
  } else {
    await vault.createSecret({ name: flow.storeAlias!, value: Buffer.from(value, 'utf8'), description: `acquired by flow ${flow.id}` });
  }
}
