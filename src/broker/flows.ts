// Secret flows: owner-defined HTTP exchanges that send a secret (send_secret), obtain one
// into the vault without the agent ever seeing it (acquire_secret), or both
// (bidirectional_secret). What the agent gets back from an acquire is only a redacted
// shape (acquiredShape): never a value or key the upstream chose.

import { AivaultError } from '../errors.ts';
import { assertCleanPath } from '../policy/paths.ts';
import type { FlowRecord } from '../storage/types.ts';
import { isSecretName } from '../vault/names.ts';

/** Built-in acquire kinds: which field holds the secret. */
export const FLOW_KINDS: Record<string, { field: string }> = {
  'oauth_token_response.access_token': { field: 'access_token' },
  'oauth_token_response.refresh_token': { field: 'refresh_token' },
  'openid_token_response.id_token': { field: 'id_token' },
};

const FLOW_ID = /^[a-z0-9][a-z0-9-]{0,62}\/[a-z0-9][a-z0-9._-]{0,62}$/;
const FIELD = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const MODES = ['send_secret', 'acquire_secret', 'bidirectional_secret'] as const;

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

export interface FlowInput {
  id: string;
  mode: string;
  target: string;
  method: string;
  visibility?: string;
  kind?: string;
  storeField?: string;
  storeAlias?: string;
  overwrite?: boolean;
  credential?: string;
  allowHttp?: boolean;
  allowPrivateNetwork?: boolean;
}

function invalid(message: string): AivaultError {
  return new AivaultError('INVALID_ARGUMENT', message);
}

/** Checks an owner's flow definition as strictly as a capability. */
export function buildFlow(input: FlowInput): FlowRecord {
  if (!FLOW_ID.test(input.id)) throw invalid('a flow id has the form group/name (lower-case letters, digits, "-", "." and "_")');
  if (!(MODES as readonly string[]).includes(input.mode)) throw invalid(`--mode is one of ${MODES.join(', ')}`);
  const mode = input.mode as FlowRecord['mode'];
  const method = input.method.toUpperCase();
  if (!/^(GET|POST|PUT|PATCH|DELETE)$/.test(method)) throw invalid('--method is GET, POST, PUT, PATCH or DELETE');
  let url: URL;
  try {
    url = new URL(input.target);
  } catch {
    throw invalid('--target must be an absolute URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && input.allowHttp)) throw new AivaultError('INSECURE_SCHEME', 'the target is plain http; pass --allow-http if you really mean it');
  if (url.username || url.password || url.hash) throw invalid('--target cannot carry userinfo or a fragment');
  const rawPath = /^[a-z]+:\/\/[^/?#]*([^?#]*)/i.exec(input.target)?.[1] || '/';
  try {
    assertCleanPath(rawPath);
  } catch {
    throw invalid('--target has a path aivault would refuse (dot segments, encoded separators…)');
  }
  const visibility = (input.visibility ?? (mode === 'send_secret' ? 'passthrough' : 'shape_only')) as FlowRecord['visibility'];
  if (visibility !== 'passthrough' && visibility !== 'shape_only') throw invalid('--visibility is passthrough or shape_only');
  const acquires = mode !== 'send_secret';
  if (acquires) {
    if (!input.storeAlias || !isSecretName(input.storeAlias)) throw invalid('an acquiring flow needs --store-alias, a canonical secret name (e.g. GITHUB_ACCESS_TOKEN)');
    if (input.kind && !(input.kind in FLOW_KINDS)) throw invalid(`--kind is one of ${Object.keys(FLOW_KINDS).join(', ')}`);
    if (!input.kind && !(input.storeField && FIELD.test(input.storeField))) throw invalid('an acquiring flow needs --kind or --store-field');
    if (visibility === 'passthrough') throw invalid('an acquiring flow returns only a shape: use --visibility shape_only');
  }
  if (mode !== 'acquire_secret' && !input.credential) throw invalid(`a ${mode} flow needs --credential, whose secret it sends`);
  return {
    id: input.id,
    mode,
    target: url.href,
    method,
    visibility,
    kind: acquires ? (input.kind ?? null) : null,
    storeField: acquires ? (input.kind ? FLOW_KINDS[input.kind]!.field : input.storeField!) : null,
    storeAlias: acquires ? input.storeAlias! : null,
    overwrite: input.overwrite === true,
    credential: input.credential ?? null,
    allowHttp: input.allowHttp === true,
    allowPrivateNetwork: input.allowPrivateNetwork === true,
    createdAt: new Date().toISOString(),
  };
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
