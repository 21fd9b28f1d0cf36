// Secret flows: owner-defined HTTP exchanges that send a secret (send_secret), obtain one
// into the vault without the agent ever seeing it (acquire_secret), or both
// (bidirectional_secret). What the agent gets back from an acquire is only a redacted
// shape: the flow's non-sensitive fields, and the type of every other value.

import { AivaultError } from '../errors.ts';
import { assertCleanPath } from '../policy/paths.ts';
import type { FlowRecord } from '../storage/types.ts';
import { isSecretName } from '../vault/names.ts';

/** Built-in acquire kinds: which field holds the secret, which fields may be shown. */
export const FLOW_KINDS: Record<string, { field: string; keep: readonly string[] }> = {
  'oauth_token_response.access_token': { field: 'access_token', keep: ['token_type', 'expires_in', 'scope'] },
  'oauth_token_response.refresh_token': { field: 'refresh_token', keep: ['token_type', 'expires_in', 'scope'] },
  'openid_token_response.id_token': { field: 'id_token', keep: ['token_type', 'expires_in', 'scope'] },
};

const FLOW_ID = /^[a-z0-9][a-z0-9-]{0,62}\/[a-z0-9][a-z0-9._-]{0,62}$/;
const FIELD = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const MODES = ['send_secret', 'acquire_secret', 'bidirectional_secret'] as const;

export type Shape = string | Shape[] | { [key: string]: Shape | unknown };

/** Every value replaced by its type, except top-level fields in `keep` (kept as they are). */
export function redactShape(value: unknown, keep: readonly string[] = [], top = true): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? [] : [redactShape(value[0], [], false)];
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = top && keep.includes(k) && (typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'string' && v.length <= 256)) ? v : redactShape(v, [], false);
    }
    return out;
  }
  return typeof value;
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

/** The fields of an acquire response that may be shown as they are. */
export function keptFields(flow: FlowRecord): readonly string[] {
  return flow.kind ? FLOW_KINDS[flow.kind]!.keep : [];
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
