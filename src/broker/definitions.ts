// The owner's definitions: custom credentials and capabilities, endpoint overrides of
// built-in providers, flows, capability policies. Each change is checked (the pure checks
// in validate-definitions.ts, here what needs the vault or the registry) and audited.
// Resolving them for a request is the Catalog's (catalog.ts).

import { isPem, PEM_PLACEHOLDERS } from '../auth/mtls.ts';
import { AivaultError } from '../errors.ts';
import { unreachableHosts, type DefinitionWarning } from '../policy/host-reach.ts';
import { isWildcard } from '../policy/tenants.ts';
import type { Registry } from '../registry/registry.ts';
import { authKind, type AuthConfig } from '../registry/types.ts';
import type { CapabilityLimits, CapabilityPolicy, CapabilityRecord, CredentialRecord, EndpointOverride, FlowRecord } from '../storage/types.ts';
import type { Vault } from '../vault/vault.ts';
import { applyPolicyChange, type PolicyChange } from './capability-policy.ts';
import type { Catalog, ResolvedCapability, ResolvedCredential } from './catalog.ts';
import { describeChanges } from './definition-changes.ts';
import {
  LIMIT_MAX,
  validateCapability,
  validateCredential,
  validateEndpointOverride,
  validateFlow,
  type CreateCapabilityInput,
  type CreateCredentialInput,
  type EndpointOverrideInput,
  type FlowInput,
} from './validate-definitions.ts';

/** What `credential update` may change (the name and provider stay); an absent field keeps its value. */
export interface CredentialChange {
  auth?: AuthConfig;
  /** Replaces every binding (a strategy's placeholders are bound together). */
  secretRefs?: Record<string, string>;
  hosts?: string[];
  allowHttp?: boolean;
  allowPrivateNetwork?: boolean;
  /** Acknowledges wildcard hosts the update adds (those kept were acknowledged at creation). */
  anyTenant?: boolean;
}

/** What `capability update` may change (the id and provider stay); an absent field keeps its value. */
export interface CapabilityChange {
  credential?: string;
  methods?: string[];
  pathPrefixes?: string[];
  /** Empty: all of the credential's hosts, as at creation. */
  hosts?: string[];
  /** Each limit given replaces the current one; null returns it to the default. */
  limits?: { [K in keyof CapabilityLimits]?: number | null };
  websocket?: boolean;
}

/** A credential as defined, and what it will not do that its owner may expect of it. */
export interface DefinedCredential {
  credential: ResolvedCredential;
  warnings: DefinitionWarning[];
}

export class Definitions {
  readonly #vault: Vault;
  readonly #registry: Registry;
  readonly #catalog: Catalog;

  constructor(vault: Vault, registry: Registry, catalog: Catalog) {
    this.#vault = vault;
    this.#registry = registry;
    this.#catalog = catalog;
  }

  async createCredential(input: CreateCredentialInput): Promise<DefinedCredential> {
    const reserved = [input.provider, input.name].find((n) => this.#registry.providers.has(n));
    if (reserved !== undefined) {
      throw new AivaultError('PROVIDER_RESERVED', `"${reserved}" is a built-in provider; store its secret by its canonical name instead (aivault registry show)`);
    }
    const { record, wildcards } = validateCredential(input);
    await this.#checkBindings(record, input.secretRefs);
    // The acknowledgement is recorded with the credential's creation.
    await this.#vault.audited({ action: 'credential.create', target: `credential:${record.name}`, ...(wildcards.length > 0 ? { reason: acknowledged(wildcards) } : {}) }, () => this.#vault.storage.createCredential(record));
    return this.#defined(record);
  }

  /**
   * Changes a custom credential in place, checked as its creation is (the same validator, the
   * same secret checks) and against the capabilities that use it: none may be left with a
   * host the credential no longer has. Widening (hosts, plain http, private targets) is the
   * owner's decision: the audit record says what changed. An update that changes nothing writes nothing.
   */
  async updateCredential(name: string, change: CredentialChange): Promise<DefinedCredential> {
    const storage = this.#vault.storage;
    // Read first: the write is refused if anything changed after it (checked against a stale state).
    const generation = await storage.generation();
    const current = await storage.getCredential(name);
    if (!current) {
      if (this.#registry.providers.has(name)) throw new AivaultError('PROVIDER_RESERVED', `${name} is a built-in credential; change its endpoints with endpoint set`);
      throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${name}`);
    }
    const { record: checked, wildcards } = validateCredential(
      {
        name,
        provider: current.provider,
        auth: change.auth ?? (current.auth as AuthConfig),
        secretRefs: change.secretRefs ?? current.bindings,
        hosts: change.hosts ?? current.hosts,
        allowHttp: change.allowHttp ?? current.allowHttp,
        allowPrivateNetwork: change.allowPrivateNetwork ?? current.allowPrivateNetwork,
        ...(change.anyTenant !== undefined ? { anyTenant: change.anyTenant } : {}),
      },
      current.hosts.filter(isWildcard),
    );
    const record: CredentialRecord = { ...checked, createdAt: current.createdAt };
    await this.#checkBindings(record, change.secretRefs ?? {});
    for (const capability of (await storage.listCapabilities()).filter((c) => c.credential === name)) {
      try {
        validateCapability(capability, record);
      } catch (err) {
        if (!(err instanceof AivaultError)) throw err;
        throw new AivaultError(err.code, `capability ${capability.id} uses it: ${err.message}; change or delete the capability first`, { field: 'hosts' });
      }
    }
    const changes = describeChanges(current, record);
    if (changes.length > 0) {
      const reason = [...changes, ...(wildcards.length > 0 ? [acknowledged(wildcards)] : [])].join('; ');
      await this.#vault.audited({ action: 'credential.update', target: `credential:${name}`, reason }, () => storage.updateCredential(record, generation));
    }
    return this.#defined(record);
  }

  /** The credential as stored, with what its hosts tell before any request. */
  async #defined(record: CredentialRecord): Promise<DefinedCredential> {
    return { credential: await this.#catalog.describeCredential(record.name), warnings: unreachableHosts(record.hosts, record.allowPrivateNetwork) };
  }

  /**
   * What only the vault can tell of a credential's bindings: each secret exists, may back a
   * custom credential, and holds PEM where the mtls strategy needs it (read to decide, never shown).
   */
  async #checkBindings(record: CredentialRecord, refs: Record<string, string>): Promise<void> {
    for (const [placeholder, id] of Object.entries(record.bindings)) {
      const secret = await this.#vault.storage.getSecret(id);
      if (!secret) throw new AivaultError('SECRET_NOT_FOUND', `no secret ${refs[placeholder] ?? id}`, { field: 'secretRefs' });
      if (secret.pinnedProvider !== null) {
        throw new AivaultError('SECRET_PINNED', `${secret.name} is pinned to the built-in provider ${secret.pinnedProvider} and cannot back a custom credential`, { field: 'secretRefs' });
      }
      if (authKind(record.auth as AuthConfig) !== 'mtls' || !(PEM_PLACEHOLDERS as readonly string[]).includes(placeholder)) continue;
      const value = await this.#vault.revealSecret(id);
      try {
        if (!isPem(value.toString('utf8'))) {
          throw new AivaultError('CREDENTIAL_INVALID', `${secret.name}, bound to {{${placeholder}}}, does not hold PEM (-----BEGIN …-----); mtls needs a PEM certificate, key and CA bundle`, { field: 'secretRefs' });
        }
      } finally {
        value.fill(0);
      }
    }
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
    if (this.#registry.capabilities.has(input.id) || this.#registry.providers.has(input.provider)) {
      throw new AivaultError('PROVIDER_RESERVED', `${input.provider} is a built-in provider; its capabilities come from the registry`);
    }
    const credential = await this.#vault.storage.getCredential(input.credential);
    if (!credential) throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${input.credential}`, { field: 'credential' });
    const record = validateCapability(input, credential);
    await this.#vault.audited({ action: 'capability.create', target: `capability:${record.id}` }, () => this.#vault.storage.createCapability(record));
    return this.#catalog.resolveCapability(record.id);
  }

  /**
   * Changes a custom capability in place, checked as its creation is (the same validator,
   * against the credential it will use); audited with what changed. An update that changes
   * nothing writes nothing.
   */
  async updateCapability(id: string, change: CapabilityChange): Promise<ResolvedCapability> {
    if (this.#registry.capabilities.has(id)) throw new AivaultError('PROVIDER_RESERVED', `${id} is built in; its allow-lists come from the registry (an owner's policy narrows it: capability policy set)`);
    const storage = this.#vault.storage;
    const generation = await storage.generation();
    const current = await storage.getCapability(id);
    if (!current) throw new AivaultError('CAPABILITY_NOT_FOUND', `no capability "${id}"`);
    const credentialName = change.credential ?? current.credential;
    const credential = await storage.getCredential(credentialName);
    if (!credential) throw new AivaultError('CREDENTIAL_NOT_FOUND', `no credential named ${credentialName}`, { field: 'credential' });
    const limits: CapabilityLimits = { ...current.limits };
    for (const [key, value] of Object.entries(change.limits ?? {}) as [keyof CapabilityLimits, number | null | undefined][]) {
      if (value === null) delete limits[key];
      else if (value !== undefined) limits[key] = value;
    }
    const checked = validateCapability(
      {
        id,
        provider: current.provider,
        credential: credentialName,
        methods: change.methods ?? current.methods,
        pathPrefixes: change.pathPrefixes ?? current.pathPrefixes,
        hosts: change.hosts ?? current.hosts,
        limits,
        websocket: change.websocket ?? current.websocket,
      },
      credential,
    );
    const record: CapabilityRecord = { ...checked, createdAt: current.createdAt };
    const changes = describeChanges(current, record);
    if (changes.length > 0) await this.#vault.audited({ action: 'capability.update', target: `capability:${id}`, reason: changes.join('; ') }, () => storage.updateCapability(record, generation));
    return this.#catalog.resolveCapability(id);
  }

  async deleteCapability(id: string): Promise<void> {
    if (this.#registry.capabilities.has(id)) throw new AivaultError('PROVIDER_RESERVED', `${id} is built in; delete its provider's secrets to disable it`);
    await this.#vault.audited({ action: 'capability.delete', target: `capability:${id}` }, async () => {
      if (!(await this.#vault.storage.deleteCapability(id))) throw new AivaultError('CAPABILITY_NOT_FOUND', `no capability "${id}"`);
      // A capability re-created under this id starts without the old one's policy.
      await this.#vault.storage.deleteCapabilityPolicy(id);
    });
  }

  /**
   * Sends a built-in provider's traffic to other endpoints: a corporate gateway, a regional
   * host, a local stand-in. An owner decision, audited, shown wherever the provider is.
   */
  async setEndpointOverride(input: EndpointOverrideInput): Promise<EndpointOverride> {
    const record = validateEndpointOverride(input, this.#registry.provider(input.provider));
    await this.#vault.audited({ action: 'endpoint.set', target: `provider:${record.provider}` }, () => this.#vault.storage.setEndpointOverride(record));
    return record;
  }

  async clearEndpointOverride(providerId: string): Promise<void> {
    const provider = this.#registry.provider(providerId);
    await this.#vault.audited({ action: 'endpoint.clear', target: `provider:${provider.provider}` }, async () => {
      if (!(await this.#vault.storage.deleteEndpointOverride(provider.provider))) throw new AivaultError('PROVIDER_NOT_FOUND', `${provider.provider} has no endpoint override`);
    });
  }

  listEndpointOverrides(): Promise<EndpointOverride[]> {
    return this.#vault.storage.listEndpointOverrides();
  }

  async createFlow(input: FlowInput): Promise<FlowRecord> {
    const flow = validateFlow(input);
    if (flow.credential && !(await this.#vault.storage.getCredential(flow.credential))) {
      throw new AivaultError('CREDENTIAL_NOT_FOUND', `no custom credential named ${flow.credential}`, { field: 'credential' });
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

  /** Sets (merges) the owner's policy on a capability, built-in or custom; audited. */
  async setPolicy(id: string, change: PolicyChange): Promise<CapabilityPolicy> {
    await this.#catalog.resolveCapability(id); // CAPABILITY_NOT_FOUND for an unknown id
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

const acknowledged = (wildcards: readonly string[]): string => `any tenant of ${wildcards.join(', ')} acknowledged`;
