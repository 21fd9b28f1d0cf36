// The owner's definitions: custom credentials and capabilities, endpoint overrides of
// built-in providers, flows, capability policies. Each change is checked (the pure checks
// in validate-definitions.ts, here what needs the vault or the registry) and audited.
// Resolving them for a request is the Catalog's (catalog.ts).

import { AivaultError } from '../errors.ts';
import type { Registry } from '../registry/registry.ts';
import type { CapabilityPolicy, EndpointOverride, FlowRecord } from '../storage/types.ts';
import type { Vault } from '../vault/vault.ts';
import { applyPolicyChange, type PolicyChange } from './capability-policy.ts';
import type { Catalog, ResolvedCapability, ResolvedCredential } from './catalog.ts';
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

export class Definitions {
  readonly #vault: Vault;
  readonly #registry: Registry;
  readonly #catalog: Catalog;

  constructor(vault: Vault, registry: Registry, catalog: Catalog) {
    this.#vault = vault;
    this.#registry = registry;
    this.#catalog = catalog;
  }

  async createCredential(input: CreateCredentialInput): Promise<ResolvedCredential> {
    const reserved = [input.provider, input.name].find((n) => this.#registry.providers.has(n));
    if (reserved !== undefined) {
      throw new AivaultError('PROVIDER_RESERVED', `"${reserved}" is a built-in provider; store its secret by its canonical name instead (aivault registry show)`);
    }
    const { record, wildcards } = validateCredential(input);
    for (const [placeholder, id] of Object.entries(record.bindings)) {
      const secret = await this.#vault.storage.getSecret(id);
      if (!secret) throw new AivaultError('SECRET_NOT_FOUND', `no secret ${input.secretRefs[placeholder]}`, { field: 'secretRefs' });
      if (secret.pinnedProvider !== null) {
        throw new AivaultError('SECRET_PINNED', `${secret.name} is pinned to the built-in provider ${secret.pinnedProvider} and cannot back a custom credential`, { field: 'secretRefs' });
      }
    }
    // The acknowledgement is recorded with the credential's creation.
    await this.#vault.audited({ action: 'credential.create', target: `credential:${record.name}`, ...(wildcards.length > 0 ? { reason: `any tenant of ${wildcards.join(', ')} acknowledged` } : {}) }, () => this.#vault.storage.createCredential(record));
    return this.#catalog.describeCredential(record.name);
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
