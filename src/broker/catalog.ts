// Capabilities and credentials, built-in and custom, resolved into one shape the broker
// uses (the hot path: read on every invoke whose cache is stale). Built-in ones come from
// the compiled registry and pinned secrets; custom ones from what the owner created
// (definitions.ts, which checks them as strictly as registry files).

import { AivaultError } from '../errors.ts';
import { withPolicyLimits } from './capability-policy.ts';
import { preload, type CatalogReads } from './catalog-reads.ts';
import { builtinCredentialStatus, provisionedProviders } from '../registry/provisioning.ts';
import type { Registry } from '../registry/registry.ts';
import type { AuthConfig } from '../registry/types.ts';
import { splitOverride } from '../policy/tenants.ts';
import type { CapabilityLimits, CapabilityPolicy, CredentialRecord } from '../storage/types.ts';
import { GLOBAL_SCOPE, serves } from '../vault/scopes.ts';
import type { Vault } from '../vault/vault.ts';

export const DEFAULT_LIMITS: Required<CapabilityLimits> = {
  timeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  maxRequestBytes: 10 * 1024 * 1024,
  maxResponseBytes: 32 * 1024 * 1024,
};

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

export class Catalog {
  readonly #vault: Vault;
  readonly #registry: Registry;

  constructor(vault: Vault, registry: Registry) {
    this.#vault = vault;
    this.#registry = registry;
  }

  async #customCredential(record: CredentialRecord, context: string, reads: CatalogReads = this.#vault.storage): Promise<ResolvedCredential> {
    const bindings = new Map<string, string>();
    const missing: string[] = [];
    const outOfScope: string[] = [];
    for (const [placeholder, id] of Object.entries(record.bindings)) {
      const secret = await reads.getSecret(id);
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

  async #builtinCredential(providerId: string, context: string, reads: CatalogReads = this.#vault.storage): Promise<ResolvedCredential> {
    const provider = this.#registry.provider(providerId);
    const status = await builtinCredentialStatus(reads, provider, context);
    const override = await reads.getEndpointOverride(providerId);
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

  /** A capability as a caller in `context` (a scope: global, workspace:W, group:W/G) gets it. */
  resolveCapability(id: string, context: string = GLOBAL_SCOPE): Promise<ResolvedCapability> {
    return this.#resolveCapability(id, context, this.#vault.storage);
  }

  async #resolveCapability(id: string, context: string, reads: CatalogReads): Promise<ResolvedCapability> {
    const builtin = this.#registry.capabilities.get(id);
    const policy = await reads.getCapabilityPolicy(id);
    if (builtin) {
      const credential = await this.#builtinCredential(builtin.provider, context, reads);
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
    const record = await reads.getCapability(id);
    if (!record) throw new AivaultError('CAPABILITY_NOT_FOUND', `no capability "${id}"`);
    const credRecord = await reads.getCredential(record.credential);
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
      credential: await this.#customCredential(credRecord, context, reads),
      policy: policy ?? null,
      websocket: record.websocket,
      signedHeaders: [],
      overrideHeaders: [],
    };
  }

  /** Enabled capabilities: built-in ones of provisioned providers, and every custom one. */
  async listCapabilities(context: string = GLOBAL_SCOPE): Promise<ResolvedCapability[]> {
    const reads = await preload(this.#vault.storage);
    const out: ResolvedCapability[] = [];
    for (const provider of await provisionedProviders(reads)) {
      const p = this.#registry.providers.get(provider);
      if (!p) continue;
      for (const c of p.capabilities) out.push(await this.#resolveCapability(c.id, context, reads));
    }
    for (const c of reads.capabilities) out.push(await this.#resolveCapability(c.id, context, reads));
    return out;
  }

  async listCredentials(): Promise<ResolvedCredential[]> {
    const reads = await preload(this.#vault.storage);
    const out: ResolvedCredential[] = [];
    for (const provider of await provisionedProviders(reads)) if (this.#registry.providers.has(provider)) out.push(await this.#builtinCredential(provider, GLOBAL_SCOPE, reads));
    for (const c of reads.credentials) out.push(await this.#customCredential(c, GLOBAL_SCOPE, reads));
    return out;
  }

  async describeCredential(name: string, context: string = GLOBAL_SCOPE): Promise<ResolvedCredential> {
    const custom = await this.#vault.storage.getCredential(name);
    if (custom) return this.#customCredential(custom, context);
    if (this.#registry.providers.has(name)) return this.#builtinCredential(name, context);
    throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${name}`);
  }
}
