// The owner's definitions checked, with nothing looked up: input -> normalised record, or an
// AivaultError naming the API field at fault (the CLI names its flag). Custom definitions
// are checked as strictly as registry files; what needs storage (secrets exist, names free)
// is Definitions' (definitions.ts).

import { AivaultError } from '../errors.ts';
import { neededPlaceholders } from '../registry/auth-inputs.ts';
import { authKind, credentialsOf, type AuthConfig, type HttpMethod, type RegistryProvider } from '../registry/types.ts';
import { validateAuthConfig } from '../registry/validate.ts';
import { hostnameMatches, parseHostPattern, patternCovers } from '../policy/hosts.ts';
import { assertCleanPath } from '../policy/paths.ts';
import { isWildcard } from '../policy/tenants.ts';
import type { CapabilityLimits, CapabilityRecord, CredentialRecord, EndpointOverride, FlowRecord } from '../storage/types.ts';
import { isSecretName, parseSecretRef } from '../vault/names.ts';
import { FLOW_KINDS } from './flows.ts';

/** The most an owner may set each limit to. */
export const LIMIT_MAX: Required<CapabilityLimits> = {
  timeoutMs: 15 * 60_000,
  connectTimeoutMs: 120_000,
  maxRequestBytes: 1024 * 1024 * 1024,
  maxResponseBytes: 4 * 1024 * 1024 * 1024,
};

export const METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const CREDENTIAL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const PROVIDER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CAPABILITY_ID = /^[a-z0-9][a-z0-9-]{0,62}\/[a-z0-9][a-z0-9._-]{0,62}$/;
const FLOW_ID = CAPABILITY_ID;
const FIELD = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const FLOW_MODES = ['send_secret', 'acquire_secret', 'bidirectional_secret'] as const;
const FLOW_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
// Registry host pattern, plus IP literals (custom credentials may target an IP).
const HOST_PATTERN = /^(?:(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?|\[[0-9a-f:.]+\])(?::[1-9][0-9]{0,4})?$/;

function invalid(message: string, field: string): AivaultError {
  return new AivaultError('INVALID_ARGUMENT', message, { field });
}

export interface CreateCredentialInput {
  name: string;
  provider: string;
  auth: AuthConfig;
  /** Placeholder -> `vault:secret:<id>` or bare id. */
  secretRefs: Record<string, string>;
  hosts: string[];
  allowHttp?: boolean;
  allowPrivateNetwork?: boolean;
  /**
   * The owner's acknowledgement that a wildcard host (`*.example.com`) reaches every host
   * under it, whoever runs it: required for one (src/policy/tenants.ts), and recorded.
   */
  anyTenant?: boolean;
}

export interface CreateCapabilityInput {
  id: string;
  provider: string;
  credential: string;
  methods: string[];
  pathPrefixes: string[];
  hosts: string[];
  limits?: CapabilityLimits;
  websocket?: boolean;
}

export interface EndpointOverrideInput {
  provider: string;
  hosts: Record<string, string>;
  tenants?: string[];
  tokenEndpoint?: string;
  allowHttp?: boolean;
  allowPrivateNetwork?: boolean;
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

/** What every definition records of where it may go (the owner's two opt-ins, off unless set), and when it was made. */
function networkAndTime(input: { allowHttp?: boolean; allowPrivateNetwork?: boolean }): { allowHttp: boolean; allowPrivateNetwork: boolean; createdAt: string } {
  return { allowHttp: input.allowHttp === true, allowPrivateNetwork: input.allowPrivateNetwork === true, createdAt: new Date().toISOString() };
}

/** A host pattern as requests spell it: lower case, no trailing dot, IP literals canonical. */
export function normaliseHost(host: string, field = 'hosts'): string {
  const h = host.trim().toLowerCase().replace(/\.(?=:|$)/, '');
  if (!HOST_PATTERN.test(h)) throw invalid('a host must be a lower-case name, "*.name" or an IP literal (IPv6 in brackets), optionally with ":port"', field);
  if (h.startsWith('*.')) return h;
  // Written the way a request's URL spells it (`[0:0::1]` is `[::1]`, `127.1` is
  // `127.0.0.1`), so the pattern matches the requests it names.
  const m = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(h)!;
  const name = m[1]!;
  if (m[2] && Number(m[2].slice(1)) > 65535) throw invalid(`${m[2].slice(1)} is not a port`, field);
  let canonical: string;
  try {
    canonical = new URL(`http://${name}/`).hostname;
  } catch {
    throw invalid(`${name.slice(0, 64)} is not a valid host name or IP address`, field);
  }
  return `${canonical}${m[2] ?? ''}`;
}

/** Each limit given: a positive integer up to its maximum. */
export function normaliseLimits(limits: CapabilityLimits = {}): CapabilityLimits {
  const out: CapabilityLimits = {};
  for (const key of Object.keys(LIMIT_MAX) as (keyof CapabilityLimits)[]) {
    const v = limits[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v <= 0 || v > LIMIT_MAX[key]) throw invalid(`${key} must be a positive integer up to ${LIMIT_MAX[key]}`, key);
    out[key] = v;
  }
  return out;
}

/** Methods as the broker compares them: upper case, once each, every one known. */
export function normaliseMethods(methods: readonly string[]): HttpMethod[] {
  const out = [...new Set(methods.map((m) => m.toUpperCase()))];
  if (out.length === 0) throw invalid('give at least one method', 'methods');
  for (const m of out) if (!METHODS.includes(m as HttpMethod)) throw invalid(`unknown method; use ${METHODS.join(', ')}`, 'methods');
  return out as HttpMethod[];
}

/** Path prefixes: clean absolute paths (`*` standing for one segment), no trailing "/" but the root. */
export function normalisePathPrefixes(prefixes: readonly string[]): string[] {
  if (prefixes.length === 0) throw invalid('give at least one path prefix', 'pathPrefixes');
  for (const p of prefixes) {
    if (p === '/') continue;
    try {
      assertCleanPath(p.replace(/\/\*(?=\/|$)/g, '/x'));
    } catch {
      throw invalid(`path prefix ${p} is not a clean absolute path`, 'pathPrefixes');
    }
    if (p.endsWith('/')) throw invalid(`path prefix ${p} must not end with "/"`, 'pathPrefixes');
  }
  return [...new Set(prefixes)];
}

/** An absolute https URL (http only if allowed), without userinfo or fragment. */
function endpointUrl(raw: string, allowHttp: boolean | undefined, field: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`${field} must be an absolute URL`, field);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowHttp)) throw new AivaultError('INSECURE_SCHEME', `${what} is plain http; set allowHttp if you really mean it`, { field: 'allowHttp' });
  if (url.username || url.password || url.hash) throw invalid(`${field} cannot carry userinfo or a fragment`, field);
  return url;
}

/**
 * A custom credential, its secret references read as ids (their existence is the caller's to
 * check). `acknowledged`: wildcard hosts the owner already acknowledged (an update keeping them).
 */
export function validateCredential(input: CreateCredentialInput, acknowledged: readonly string[] = []): { record: CredentialRecord; wildcards: string[] } {
  if (!CREDENTIAL_NAME.test(input.name)) throw invalid('a credential name is 1-64 lower-case letters, digits, ".", "_" or "-"', 'name');
  if (!PROVIDER_NAME.test(input.provider)) throw invalid('a provider name is 1-63 lower-case letters, digits or "-"', 'provider');
  const authIssues = validateAuthConfig(input.auth);
  if (authIssues.length > 0) throw invalid(`invalid auth: ${authIssues.map((i) => `${i.pointer} ${i.message}`).join('; ')}`, 'auth');
  if (input.hosts.length === 0) throw invalid('give at least one host', 'hosts');
  if (typeof input.auth === 'object' && 'o_auth2' in input.auth && input.auth.o_auth2.token_endpoint.startsWith('http:') && !input.allowHttp) {
    throw new AivaultError('INSECURE_SCHEME', 'the token endpoint is plain http; set allowHttp if you really mean it', { field: 'allowHttp' });
  }
  const hosts = [...new Set(input.hosts.map((h) => normaliseHost(h)))];
  const wildcards = hosts.filter((h) => isWildcard(h) && !acknowledged.includes(h));
  if (wildcards.length > 0 && input.anyTenant !== true) {
    throw invalid(`${wildcards.join(', ')} reaches every host under it, whoever runs it (on a multi-tenant service, anyone's): name the exact host, or set anyTenant to acknowledge`, 'anyTenant');
  }
  const { required, optional } = neededPlaceholders(input.auth);
  const bindings: Record<string, string> = {};
  for (const [placeholder, ref] of Object.entries(input.secretRefs)) {
    if (!required.includes(placeholder) && !optional.includes(placeholder)) {
      throw invalid(`the ${authKind(input.auth)} strategy has no {{${placeholder}}}; it uses ${[...required, ...optional].map((p) => `{{${p}}}`).join(', ') || 'no placeholder'}`, 'secretRefs');
    }
    let id: string | undefined;
    try {
      id = parseSecretRef(ref);
    } catch (err) {
      throw invalid((err as AivaultError).message, 'secretRefs');
    }
    bindings[placeholder] = id ?? ref;
  }
  const unbound = required.filter((p) => bindings[p] === undefined);
  if (unbound.length > 0) throw invalid(`the template needs ${unbound.map((p) => `{{${p}}}`).join(', ')}, which no secret reference binds`, 'secretRefs');
  const record: CredentialRecord = {
    name: input.name,
    provider: input.provider,
    auth: input.auth,
    bindings,
    hosts,
    ...networkAndTime(input),
  };
  return { record, wildcards };
}

/** A custom capability over `credential`: its hosts (default: the credential's) all within the credential's. */
export function validateCapability(input: CreateCapabilityInput, credential: Pick<CredentialRecord, 'name' | 'provider' | 'hosts'>): CapabilityRecord {
  if (!CAPABILITY_ID.test(input.id)) throw invalid('a capability id has the form provider/name (lower-case letters, digits, "-", "." and "_")', 'id');
  if (input.id.split('/')[0] !== input.provider) throw invalid(`the capability id must start with its provider: ${input.provider}/…`, 'id');
  if (credential.provider !== input.provider) throw invalid(`credential ${credential.name} belongs to provider ${credential.provider}`, 'credential');
  const methods = normaliseMethods(input.methods);
  const pathPrefixes = normalisePathPrefixes(input.pathPrefixes);
  const hosts = input.hosts.length > 0 ? [...new Set(input.hosts.map((h) => normaliseHost(h)))] : credential.hosts;
  for (const h of hosts) {
    if (!credential.hosts.some((outer) => patternCovers(outer, h))) throw invalid(`host ${h} is not among credential ${credential.name}'s hosts (${credential.hosts.join(', ')})`, 'hosts');
  }
  return {
    id: input.id,
    provider: input.provider,
    credential: input.credential,
    hosts,
    methods,
    pathPrefixes,
    limits: normaliseLimits(input.limits),
    websocket: input.websocket === true,
    createdAt: new Date().toISOString(),
  };
}

/** An endpoint override of built-in `provider`: tenants of its wildcard hosts, replacements of its other hosts, a token endpoint. */
export function validateEndpointOverride(input: EndpointOverrideInput, provider: RegistryProvider): EndpointOverride {
  const hosts: Record<string, string> = {};
  const providerHosts = [...new Set([...provider.hosts, ...(provider.alternatives ?? []).flatMap((a) => a.hosts ?? [])])];
  const tenantHosts: string[] = [];
  for (const raw of input.tenants ?? []) {
    const tenant = normaliseHost(raw, 'tenants');
    if (isWildcard(tenant) || tenant.includes(':') || tenant.startsWith('[')) throw invalid(`a tenant is one host name, without a port: ${tenant.slice(0, 64)}`, 'tenants');
    const slot = providerHosts.find((h) => isWildcard(h) && hostnameMatches(parseHostPattern(h), tenant));
    if (!slot) throw invalid(`${tenant} is not one of ${provider.provider}'s tenant hosts (${providerHosts.filter(isWildcard).join(', ') || 'it has none'})`, 'tenants');
    hosts[slot] = hosts[slot] ? `${hosts[slot]},${tenant}` : tenant;
    tenantHosts.push(tenant);
  }
  for (const [original, replacement] of Object.entries(input.hosts)) {
    const known = [...providerHosts.filter((h) => !isWildcard(h)), ...tenantHosts];
    if (!known.includes(original)) throw invalid(`${original} is not one of ${provider.provider}'s hosts (${[...new Set(known)].join(', ')})`, 'hosts');
    const target = normaliseHost(replacement);
    if (target.startsWith('*.')) throw invalid('a replacement host cannot be a wildcard', 'hosts');
    hosts[original] = target;
  }
  let tokenEndpoint: string | null = null;
  if (input.tokenEndpoint !== undefined) {
    if (!credentialsOf(provider).some((c) => typeof c.auth === 'object' && 'o_auth2' in c.auth)) throw invalid(`${provider.provider} does not use o_auth2`, 'tokenEndpoint');
    tokenEndpoint = endpointUrl(input.tokenEndpoint, input.allowHttp, 'tokenEndpoint', 'the token endpoint').href;
  }
  if (Object.keys(hosts).length === 0 && tokenEndpoint === null) throw invalid('give at least one host mapping, tenant or token endpoint', 'hosts');
  return {
    provider: provider.provider,
    hosts,
    tokenEndpoint,
    ...networkAndTime(input),
  };
}

/** An owner's flow definition, checked as strictly as a capability. */
export function validateFlow(input: FlowInput): FlowRecord {
  if (!FLOW_ID.test(input.id)) throw invalid('a flow id has the form group/name (lower-case letters, digits, "-", "." and "_")', 'id');
  if (!(FLOW_MODES as readonly string[]).includes(input.mode)) throw invalid(`mode is one of ${FLOW_MODES.join(', ')}`, 'mode');
  const mode = input.mode as FlowRecord['mode'];
  const method = input.method.toUpperCase();
  if (!FLOW_METHODS.includes(method)) throw invalid(`method is ${FLOW_METHODS.join(', ')}`, 'method');
  const url = endpointUrl(input.target, input.allowHttp, 'target', 'the target');
  const rawPath = /^[a-z]+:\/\/[^/?#]*([^?#]*)/i.exec(input.target)?.[1] || '/';
  try {
    assertCleanPath(rawPath);
  } catch {
    throw invalid('target has a path aivault would refuse (dot segments, encoded separators…)', 'target');
  }
  const visibility = (input.visibility ?? (mode === 'send_secret' ? 'passthrough' : 'shape_only')) as FlowRecord['visibility'];
  if (visibility !== 'passthrough' && visibility !== 'shape_only') throw invalid('visibility is passthrough or shape_only', 'visibility');
  const acquiring = mode !== 'send_secret';
  if (acquiring) {
    if (!input.storeAlias || !isSecretName(input.storeAlias)) throw invalid('an acquiring flow needs storeAlias, a canonical secret name (e.g. GITHUB_ACCESS_TOKEN)', 'storeAlias');
    if (input.kind && !(input.kind in FLOW_KINDS)) throw invalid(`kind is one of ${Object.keys(FLOW_KINDS).join(', ')}`, 'kind');
    if (!input.kind && !(input.storeField && FIELD.test(input.storeField))) throw invalid('an acquiring flow needs kind or storeField', 'kind');
    if (visibility === 'passthrough') throw invalid('an acquiring flow returns only a shape: visibility is shape_only', 'visibility');
  }
  if (mode !== 'acquire_secret' && !input.credential) throw invalid(`a ${mode} flow needs credential, whose secret it sends`, 'credential');
  return {
    id: input.id,
    mode,
    target: url.href,
    method,
    visibility,
    kind: acquiring ? (input.kind ?? null) : null,
    storeField: acquiring ? (input.kind ? FLOW_KINDS[input.kind]!.storeField : input.storeField!) : null,
    storeAlias: acquiring ? input.storeAlias! : null,
    overwrite: input.overwrite === true,
    credential: input.credential ?? null,
    ...networkAndTime(input),
  };
}
