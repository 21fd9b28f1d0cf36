// Capabilities and credentials, built-in and custom, resolved into one shape the broker
// uses. Built-in ones come from the compiled registry and pinned secrets; custom ones
// from what the owner created. Custom definitions are checked as strictly as registry
// files, and can never borrow a pinned secret or a built-in name.

import { AivaultError } from '../errors.ts';
import { neededPlaceholders } from '../registry/auth-inputs.ts';
import { applyPolicyChange, withPolicyLimits, type PolicyChange } from './capability-policy.ts';
import { builtinCredentialStatus, provisionedProviders } from '../registry/provisioning.ts';
import type { Registry } from '../registry/registry.ts';
import { authKind, credentialsOf, type AuthConfig, type HttpMethod } from '../registry/types.ts';
import { validateAuthConfig } from '../registry/validate.ts';
import { hostnameMatches, parseHostPattern, patternCovers } from '../policy/hosts.ts';
import { isWildcard, splitOverride } from '../policy/tenants.ts';
import { assertCleanPath } from '../policy/paths.ts';
import type { CapabilityLimits, CapabilityPolicy, CapabilityRecord, CredentialRecord, EndpointOverride, FlowRecord } from '../storage/types.ts';
import { buildFlow, type FlowInput } from './flows.ts';
import { parseSecretRef } from '../vault/names.ts';
import { GLOBAL_SCOPE, serves } from '../vault/scopes.ts';
import type { Vault } from '../vault/vault.ts';

export const DEFAULT_LIMITS: Required<CapabilityLimits> = {
  timeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  maxRequestBytes: 10 * 1024 * 1024,
  maxResponseBytes: 32 * 1024 * 1024,
};

const LIMIT_MAX: Required<CapabilityLimits> = {
  timeoutMs: 15 * 60_000,
  connectTimeoutMs: 120_000,
  maxRequestBytes: 1024 * 1024 * 1024,
  maxResponseBytes: 4 * 1024 * 1024 * 1024,
};

export const METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const CREDENTIAL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const PROVIDER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CAPABILITY_ID = /^[a-z0-9][a-z0-9-]{0,62}\/[a-z0-9][a-z0-9._-]{0,62}$/;
// Registry host pattern, plus IP literals (custom credentials may target an IP).
const HOST_PATTERN = /^(?:(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?|\[[0-9a-f:.]+\])(?::[1-9][0-9]{0,4})?$/;

export interface ResolvedCredential {
  name: string;
  provider: string;
  source: 'builtin' | 'custom';
  auth: AuthConfig;
  hosts: readonly string[];
  allowHttp: boolean;
  allowPrivateNetwork: boolean;
  /** Placeholder -> secret id, for the secrets that exist. */
  bindings: ReadonlyMap<string, string>;
  /** Secret names (built-in) or placeholders (custom) still missing. */
  missing: string[];
  /** Owner overrides: agent-facing host -> the host[:port] actually contacted. */
  hostMap: ReadonlyMap<string, string>;
  /** Built-in: the owner's tenant hosts for each wildcard host of the provider (src/policy/tenants.ts). */
  tenants: ReadonlyMap<string, readonly string[]>;
  /** The scope its secrets come from (built-in), or `global` (custom: secrets bound by id). */
  scope: string;
  /** Built-in: the registry alternative in use, null for the provider's main credential. */
  alternative: string | null;
  /** Secrets the credential has but may not use for this caller's context. */
  outOfScope: string[];
  /** An alternative's own endpoint: sent to the addressed host if listed (else the first), path prefixed. */
  route?: { hosts: readonly string[]; pathPrefix: string };
}

/** Every required secret exists, and every one of them serves the caller's context. */
export function credentialReady(c: ResolvedCredential): boolean {
  return c.missing.length === 0 && c.outOfScope.length === 0;
}

export interface ResolvedCapability {
  id: string;
  provider: string;
  source: 'builtin' | 'custom';
  description: string | null;
  hosts: readonly string[];
  methods: readonly string[];
  pathPrefixes: readonly string[];
  limits: Required<CapabilityLimits>;
  credential: ResolvedCredential;
  /** The owner's policy on this capability, if any (its body caps are already in `limits`). */
  policy: CapabilityPolicy | null;
  /** WebSocket upgrades allowed (through the gateway). */
  websocket: boolean;
  /** Agent headers a signing strategy may sign (registry `allow.signedHeaders`; none for custom capabilities). */
  signedHeaders: readonly string[];
  /** Method, path or client override headers an agent may send (registry `allow.overrideHeaders`; none for custom capabilities). */
  overrideHeaders: readonly string[];
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

function invalid(message: string): AivaultError {
  return new AivaultError('INVALID_ARGUMENT', message);
}

export function normaliseHost(host: string): string {
  const h = host.trim().toLowerCase().replace(/\.(?=:|$)/, '');
  if (!HOST_PATTERN.test(h)) throw invalid('a host must be a lower-case name, "*.name" or an IP literal (IPv6 in brackets), optionally with ":port"');
  if (h.startsWith('*.')) return h;
  // Written the way a request's URL spells it (`[0:0::1]` is `[::1]`, `127.1` is
  // `127.0.0.1`), so the pattern matches the requests it names.
  const m = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(h)!;
  const name = m[1]!;
  let canonical: string;
  try {
    canonical = new URL(`http://${name}/`).hostname;
  } catch {
    throw invalid(`${name.slice(0, 64)} is not a valid host name or IP address`);
  }
  return `${canonical}${m[2] ?? ''}`;
}

function normaliseLimits(limits: CapabilityLimits = {}): CapabilityLimits {
  const out: CapabilityLimits = {};
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof CapabilityLimits)[]) {
    const v = limits[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v <= 0 || v > LIMIT_MAX[key]) throw invalid(`${key} must be a positive integer up to ${LIMIT_MAX[key]}`);
    out[key] = v;
  }
  return out;
}

export class Catalog {
  readonly #vault: Vault;
  readonly #registry: Registry;

  constructor(vault: Vault, registry: Registry) {
    this.#vault = vault;
    this.#registry = registry;
  }

  async #customCredential(record: CredentialRecord, context: string): Promise<ResolvedCredential> {
    const bindings = new Map<string, string>();
    const missing: string[] = [];
    const outOfScope: string[] = [];
    for (const [placeholder, id] of Object.entries(record.bindings)) {
      const secret = await this.#vault.storage.getSecret(id);
      if (!secret) missing.push(placeholder);
      else if (!serves(secret, context)) outOfScope.push(`${secret.name}@${secret.scope}`);
      else bindings.set(placeholder, id);
    }
    return {
      name: record.name,
      provider: record.provider,
      source: 'custom',
      auth: record.auth as AuthConfig,
      hosts: record.hosts,
      allowHttp: record.allowHttp,
      allowPrivateNetwork: record.allowPrivateNetwork,
      bindings,
      missing,
      hostMap: new Map(),
      tenants: new Map(),
      scope: GLOBAL_SCOPE,
      alternative: null,
      outOfScope,
    };
  }

  async #builtinCredential(providerId: string, context: string): Promise<ResolvedCredential> {
    const provider = this.#registry.provider(providerId);
    const status = await builtinCredentialStatus(this.#vault, provider, context);
    const override = await this.#vault.storage.getEndpointOverride(providerId);
    let auth = status.credential.auth;
    if (override?.tokenEndpoint && typeof auth === 'object' && 'o_auth2' in auth) {
      auth = { o_auth2: { ...auth.o_auth2, token_endpoint: override.tokenEndpoint } };
    }
    const { hosts, pathPrefix } = status.credential;
    const { hostMap, tenants } = splitOverride(override);
    return {
      name: status.alternative ? `${provider.provider}:${status.alternative}` : provider.provider,
      provider: provider.provider,
      source: 'builtin',
      auth,
      hosts: provider.hosts,
      allowHttp: override?.allowHttp ?? false,
      allowPrivateNetwork: override?.allowPrivateNetwork ?? false,
      bindings: new Map(status.secrets.filter((s) => s.secretId !== null).map((s) => [s.placeholder, s.secretId!])),
      missing: status.provisioned ? status.missing : [...status.secrets.filter((s) => s.required).map((s) => s.name), ...status.unboundTenants],
      hostMap,
      tenants,
      scope: status.scope,
      alternative: status.alternative,
      outOfScope: status.provisioned ? [] : status.outOfScope,
      ...(hosts || pathPrefix ? { route: { hosts: hosts ?? [], pathPrefix: pathPrefix ?? '' } } : {}),
    };
  }

  /**
   * Sends a built-in provider's traffic to other endpoints: a corporate gateway, a regional
   * host, a local stand-in. An owner decision, audited, shown wherever the provider is.
   */
  async setEndpointOverride(input: { provider: string; hosts: Record<string, string>; tenants?: string[]; tokenEndpoint?: string; allowHttp?: boolean; allowPrivateNetwork?: boolean }): Promise<EndpointOverride> {
    const provider = this.#registry.provider(input.provider);
    const hosts: Record<string, string> = {};
    const providerHosts = [...new Set([...provider.hosts, ...(provider.alternatives ?? []).flatMap((a) => a.hosts ?? [])])];
    const tenantHosts: string[] = [];
    for (const raw of input.tenants ?? []) {
      const tenant = normaliseHost(raw);
      if (isWildcard(tenant) || tenant.includes(':') || tenant.startsWith('[')) throw invalid(`a tenant is one host name, without a port: ${tenant.slice(0, 64)}`);
      const slot = providerHosts.find((h) => isWildcard(h) && hostnameMatches(parseHostPattern(h), tenant));
      if (!slot) throw invalid(`${tenant} is not one of ${provider.provider}'s tenant hosts (${providerHosts.filter(isWildcard).join(', ') || 'it has none'})`);
      hosts[slot] = hosts[slot] ? `${hosts[slot]},${tenant}` : tenant;
      tenantHosts.push(tenant);
    }
    for (const [original, replacement] of Object.entries(input.hosts)) {
      const known = [...providerHosts.filter((h) => !isWildcard(h)), ...tenantHosts];
      if (!known.includes(original)) {
        throw invalid(`${original} is not one of ${provider.provider}'s hosts (${[...new Set(known)].join(', ')})`);
      }
      const target = normaliseHost(replacement);
      if (target.startsWith('*.')) throw invalid('a replacement host cannot be a wildcard');
      hosts[original] = target;
    }
    let tokenEndpoint: string | null = null;
    if (input.tokenEndpoint !== undefined) {
      if (!credentialsOf(provider).some((c) => typeof c.auth === 'object' && 'o_auth2' in c.auth)) throw invalid(`${provider.provider} does not use o_auth2`);
      let url: URL;
      try {
        url = new URL(input.tokenEndpoint);
      } catch {
        throw invalid('--token-endpoint must be an absolute URL');
      }
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && input.allowHttp)) throw new AivaultError('INSECURE_SCHEME', 'the token endpoint is plain http; pass --allow-http if you really mean it');
      if (url.username || url.password || url.hash) throw invalid('--token-endpoint cannot carry userinfo or a fragment');
      tokenEndpoint = url.href;
    }
    if (Object.keys(hosts).length === 0 && tokenEndpoint === null) throw invalid('give at least one host mapping, tenant or token endpoint');
    const record: EndpointOverride = {
      provider: provider.provider,
      hosts,
      tokenEndpoint,
      allowHttp: input.allowHttp === true,
      allowPrivateNetwork: input.allowPrivateNetwork === true,
      createdAt: new Date().toISOString(),
    };
    await this.#vault.audited({ action: 'endpoint.set', target: `provider:${provider.provider}` }, () => this.#vault.storage.setEndpointOverride(record));
    return record;
  }

  async clearEndpointOverride(providerId: string): Promise<void> {
    const provider = this.#registry.provider(providerId);
    await this.#vault.audited({ action: 'endpoint.clear', target: `provider:${provider.provider}` }, async () => {
      if (!(await this.#vault.storage.deleteEndpointOverride(provider.provider))) throw new AivaultError('PROVIDER_NOT_FOUND', `${provider.provider} has no endpoint override`);
    });
  }

  async createFlow(input: FlowInput): Promise<FlowRecord> {
    const flow = buildFlow(input);
    if (flow.credential) {
      const credential = await this.#vault.storage.getCredential(flow.credential);
      if (!credential) throw new AivaultError('CREDENTIAL_NOT_FOUND', `no custom credential named ${flow.credential}`);
    }
    if (this.#registry.capabilities.has(flow.id) || (await this.#vault.storage.getCapability(flow.id))) {
      throw new AivaultError('CAPABILITY_ALREADY_EXISTS', `${flow.id} is already a capability`);
    }
    await this.#vault.audited({ action: 'flow.create', target: `flow:${flow.id}` }, () => this.#vault.storage.putFlow(flow));
    return flow;
  }

  async getFlow(id: string): Promise<FlowRecord> {
    const flow = await this.#vault.storage.getFlow(id);
    if (!flow) throw new AivaultError('FLOW_NOT_FOUND', `no flow ${id}`);
    return flow;
  }

  listFlows(): Promise<FlowRecord[]> {
    return this.#vault.storage.listFlows();
  }

  async deleteFlow(id: string): Promise<void> {
    await this.#vault.audited({ action: 'flow.delete', target: `flow:${id}` }, async () => {
      if (!(await this.#vault.storage.deleteFlow(id))) throw new AivaultError('FLOW_NOT_FOUND', `no flow ${id}`);
    });
  }

  listEndpointOverrides(): Promise<EndpointOverride[]> {
    return this.#vault.storage.listEndpointOverrides();
  }

  /** A capability as a caller in `context` (a scope: global, workspace:W, group:W/G) gets it. */
  async resolveCapability(id: string, context: string = GLOBAL_SCOPE): Promise<ResolvedCapability> {
    const builtin = this.#registry.capabilities.get(id);
    const policy = await this.#vault.storage.getCapabilityPolicy(id);
    if (builtin) {
      const credential = await this.#builtinCredential(builtin.provider, context);
      return {
        id,
        provider: builtin.provider,
        source: 'builtin',
        description: builtin.description ?? null,
        hosts: builtin.allow.hosts,
        methods: builtin.allow.methods,
        pathPrefixes: builtin.allow.pathPrefixes,
        limits: withPolicyLimits(DEFAULT_LIMITS, policy),
        credential,
        policy: policy ?? null,
        websocket: builtin.allow.websocket === true,
        signedHeaders: builtin.allow.signedHeaders ?? [],
        overrideHeaders: builtin.allow.overrideHeaders ?? [],
      };
    }
    const record = await this.#vault.storage.getCapability(id);
    if (!record) throw new AivaultError('CAPABILITY_NOT_FOUND', `no capability "${id}"`);
    const credRecord = await this.#vault.storage.getCredential(record.credential);
    if (!credRecord) throw new AivaultError('CREDENTIAL_NOT_FOUND', `the credential of ${id} no longer exists`);
    return {
      id,
      provider: record.provider,
      source: 'custom',
      description: null,
      hosts: record.hosts,
      methods: record.methods,
      pathPrefixes: record.pathPrefixes,
      limits: withPolicyLimits({ ...DEFAULT_LIMITS, ...record.limits }, policy),
      credential: await this.#customCredential(credRecord, context),
      policy: policy ?? null,
      websocket: record.websocket,
      signedHeaders: [],
      overrideHeaders: [],
    };
  }

  /** Enabled capabilities: built-in ones of provisioned providers, and every custom one. */
  async listCapabilities(context: string = GLOBAL_SCOPE): Promise<ResolvedCapability[]> {
    const out: ResolvedCapability[] = [];
    for (const provider of await provisionedProviders(this.#vault)) {
      const p = this.#registry.providers.get(provider);
      if (!p) continue;
      for (const c of p.capabilities) out.push(await this.resolveCapability(c.id, context));
    }
    for (const c of await this.#vault.storage.listCapabilities()) out.push(await this.resolveCapability(c.id, context));
    return out;
  }

  async listCredentials(): Promise<ResolvedCredential[]> {
    const out: ResolvedCredential[] = [];
    for (const provider of await provisionedProviders(this.#vault)) if (this.#registry.providers.has(provider)) out.push(await this.#builtinCredential(provider, GLOBAL_SCOPE));
    for (const c of await this.#vault.storage.listCredentials()) out.push(await this.#customCredential(c, GLOBAL_SCOPE));
    return out;
  }

  async describeCredential(name: string, context: string = GLOBAL_SCOPE): Promise<ResolvedCredential> {
    const custom = await this.#vault.storage.getCredential(name);
    if (custom) return this.#customCredential(custom, context);
    if (this.#registry.providers.has(name)) return this.#builtinCredential(name, context);
    throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${name}`);
  }

  async createCredential(input: CreateCredentialInput): Promise<ResolvedCredential> {
    if (!CREDENTIAL_NAME.test(input.name)) throw invalid('a credential name is 1-64 lower-case letters, digits, ".", "_" or "-"');
    if (!PROVIDER_NAME.test(input.provider)) throw invalid('a provider name is 1-63 lower-case letters, digits or "-"');
    if (this.#registry.providers.has(input.provider) || this.#registry.providers.has(input.name)) {
      throw new AivaultError('PROVIDER_RESERVED', `"${this.#registry.providers.has(input.provider) ? input.provider : input.name}" is a built-in provider; store its secret by its canonical name instead (aivault registry show)`);
    }
    const authIssues = validateAuthConfig(input.auth);
    if (authIssues.length > 0) throw invalid(`invalid auth: ${authIssues.map((i) => `${i.pointer} ${i.message}`).join('; ')}`);
    if (input.hosts.length === 0) throw invalid('give at least one --host');
    if (typeof input.auth === 'object' && 'o_auth2' in input.auth && input.auth.o_auth2.token_endpoint.startsWith('http:') && !input.allowHttp) {
      throw new AivaultError('INSECURE_SCHEME', 'the token endpoint is plain http; pass --allow-http if you really mean it');
    }
    const hosts = [...new Set(input.hosts.map(normaliseHost))];
    const wildcards = hosts.filter(isWildcard);
    if (wildcards.length > 0 && input.anyTenant !== true) {
      throw invalid(`${wildcards.join(', ')} reaches every host under it, whoever runs it (on a multi-tenant service, anyone's): name the exact host, or set anyTenant to acknowledge`);
    }

    const { required, optional } = neededPlaceholders(input.auth);
    const bindings: Record<string, string> = {};
    for (const [placeholder, ref] of Object.entries(input.secretRefs)) {
      if (!required.includes(placeholder) && !optional.includes(placeholder)) {
        throw invalid(`the ${authKind(input.auth)} strategy has no {{${placeholder}}}; it uses ${[...required, ...optional].map((p) => `{{${p}}}`).join(', ') || 'no placeholder'}`);
      }
      const id = parseSecretRef(ref) ?? ref;
      const secret = await this.#vault.storage.getSecret(id);
      if (!secret) throw new AivaultError('SECRET_NOT_FOUND', `no secret ${ref}`);
      if (secret.pinnedProvider !== null) {
        throw new AivaultError('SECRET_PINNED', `${secret.name} is pinned to the built-in provider ${secret.pinnedProvider} and cannot back a custom credential`);
      }
      bindings[placeholder] = id;
    }
    const unbound = required.filter((p) => bindings[p] === undefined);
    if (unbound.length > 0) throw invalid(`the template needs ${unbound.map((p) => `{{${p}}}`).join(', ')}, which no --secret-ref binds`);

    const record: CredentialRecord = {
      name: input.name,
      provider: input.provider,
      auth: input.auth,
      bindings,
      hosts,
      allowHttp: input.allowHttp === true,
      allowPrivateNetwork: input.allowPrivateNetwork === true,
      createdAt: new Date().toISOString(),
    };
    // The acknowledgement is recorded with the credential's creation.
    await this.#vault.audited({ action: 'credential.create', target: `credential:${input.name}`, ...(wildcards.length > 0 ? { reason: `any tenant of ${wildcards.join(', ')} acknowledged` } : {}) }, () => this.#vault.storage.createCredential(record));
    return this.#customCredential(record, GLOBAL_SCOPE);
  }

  async deleteCredential(name: string): Promise<void> {
    if (this.#registry.providers.has(name) && !(await this.#vault.storage.getCredential(name))) {
      throw new AivaultError('PROVIDER_RESERVED', `${name} is a built-in credential; delete its pinned secrets to disable it`);
    }
    await this.#vault.audited({ action: 'credential.delete', target: `credential:${name}` }, async () => {
      if (!(await this.#vault.storage.deleteCredential(name))) throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${name}`);
    });
  }

  async createCapability(input: CreateCapabilityInput): Promise<ResolvedCapability> {
    if (!CAPABILITY_ID.test(input.id)) throw invalid('a capability id has the form provider/name (lower-case letters, digits, "-", "." and "_")');
    if (input.id.split('/')[0] !== input.provider) throw invalid(`the capability id must start with its provider: ${input.provider}/…`);
    if (this.#registry.capabilities.has(input.id) || this.#registry.providers.has(input.provider)) {
      throw new AivaultError('PROVIDER_RESERVED', `${input.provider} is a built-in provider; its capabilities come from the registry`);
    }
    const credential = await this.#vault.storage.getCredential(input.credential);
    if (!credential) throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${input.credential}`);
    if (credential.provider !== input.provider) throw invalid(`credential ${input.credential} belongs to provider ${credential.provider}`);
    const methods = [...new Set(input.methods.map((m) => m.toUpperCase()))];
    if (methods.length === 0) throw invalid('give at least one --method');
    for (const m of methods) if (!METHODS.includes(m as HttpMethod)) throw invalid(`unknown method; use ${METHODS.join(', ')}`);
    if (input.pathPrefixes.length === 0) throw invalid('give at least one --path prefix');
    for (const p of input.pathPrefixes) {
      if (p !== '/') {
        try {
          assertCleanPath(p.replace(/\/\*(?=\/|$)/g, '/x'));
        } catch {
          throw invalid(`path prefix ${p} is not a clean absolute path`);
        }
        if (p.endsWith('/')) throw invalid(`path prefix ${p} must not end with "/"`);
      }
    }
    const hosts = input.hosts.length > 0 ? [...new Set(input.hosts.map(normaliseHost))] : credential.hosts;
    for (const h of hosts) {
      if (!credential.hosts.some((outer) => patternCovers(outer, h))) throw invalid(`host ${h} is not among credential ${credential.name}'s hosts (${credential.hosts.join(', ')})`);
    }
    const record: CapabilityRecord = {
      id: input.id,
      provider: input.provider,
      credential: input.credential,
      hosts,
      methods,
      pathPrefixes: [...new Set(input.pathPrefixes)],
      limits: normaliseLimits(input.limits),
      websocket: input.websocket === true,
      createdAt: new Date().toISOString(),
    };
    await this.#vault.audited({ action: 'capability.create', target: `capability:${input.id}` }, () => this.#vault.storage.createCapability(record));
    return this.resolveCapability(input.id);
  }

  async deleteCapability(id: string): Promise<void> {
    if (this.#registry.capabilities.has(id)) throw new AivaultError('PROVIDER_RESERVED', `${id} is built in; delete its provider's secrets to disable it`);
    await this.#vault.audited({ action: 'capability.delete', target: `capability:${id}` }, async () => {
      if (!(await this.#vault.storage.deleteCapability(id))) throw new AivaultError('CAPABILITY_NOT_FOUND', `no capability "${id}"`);
      // A capability re-created under this id starts without the old one's policy.
      await this.#vault.storage.deleteCapabilityPolicy(id);
    });
  }

  /** Sets (merges) the owner's policy on a capability, built-in or custom; audited. */
  async setPolicy(id: string, change: PolicyChange): Promise<CapabilityPolicy> {
    await this.resolveCapability(id); // CAPABILITY_NOT_FOUND for an unknown id
    const next = applyPolicyChange(await this.#vault.storage.getCapabilityPolicy(id), change, LIMIT_MAX);
    await this.#vault.audited({ action: 'capability.policy.set', target: `capability:${id}` }, () => this.#vault.storage.putCapabilityPolicy(id, next));
    return next;
  }

  async clearPolicy(id: string): Promise<void> {
    await this.#vault.audited({ action: 'capability.policy.clear', target: `capability:${id}` }, async () => {
      if (!(await this.#vault.storage.deleteCapabilityPolicy(id))) throw new AivaultError('CAPABILITY_NOT_FOUND', `${id} has no policy`);
    });
  }
}
