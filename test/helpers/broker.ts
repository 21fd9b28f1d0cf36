// A throw-away vault and in-process broker for library-level tests.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Broker } from '../../src/broker/broker.ts';
import type { Definitions } from '../../src/broker/definitions.ts';
import { composeServices, type Services } from '../../src/services.ts';
import type { CreateCredentialInput } from '../../src/broker/validate-definitions.ts';
import type { AuthConfig } from '../../src/registry/types.ts';
import { builtinRegistry, type Registry } from '../../src/registry/registry.ts';
import { Vault } from '../../src/vault/vault.ts';

export interface TestBroker {
  vault: Vault;
  broker: Broker;
  /** Everything composed with the broker (agents, approvals, catalog, ...). */
  services: Services;
  /** The owner's definitions, composed with the broker. */
  definitions: Definitions;
  dir: string;
  /** Stores secrets, then a credential and a capability over them. */
  custom(options: {
    name: string;
    auth: AuthConfig;
    secrets: Record<string, string>;
    hosts: string[];
    methods?: string[];
    paths?: string[];
    allowHttp?: boolean;
    allowPrivateNetwork?: boolean;
    limits?: Record<string, number>;
  }): Promise<string>;
  close(): Promise<void>;
}

let counter = 0;

/** A fresh vault and broker; `registry` defaults to the built-in one. */
export async function testBroker(registry?: Registry): Promise<TestBroker> {
  const root = mkdtempSync(join(tmpdir(), 'aivault-broker-'));
  const env = { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') };
  const vault = await Vault.init({ dir: join(root, 'vault'), keyProvider: 'env', env });
  const services = composeServices(vault, registry ?? (await builtinRegistry()));
  const { broker, definitions } = services;
  return {
    vault,
    broker,
    services,
    definitions,
    dir: join(root, 'vault'),
    async custom(o) {
      const refs: Record<string, string> = {};
      for (const [placeholder, value] of Object.entries(o.secrets)) {
        const info = await vault.createSecret({ name: `S_${++counter}_${placeholder.toUpperCase()}`, value: Buffer.from(value) });
        refs[placeholder] = info.ref;
      }
      const input: CreateCredentialInput = {
        name: o.name,
        provider: o.name,
        auth: o.auth,
        secretRefs: refs,
        hosts: o.hosts,
        allowHttp: o.allowHttp ?? true,
        allowPrivateNetwork: o.allowPrivateNetwork ?? true,
      };
      await definitions.createCredential(input);
      const id = `${o.name}/api`;
      await definitions.createCapability({ id, provider: o.name, credential: o.name, methods: o.methods ?? ['GET', 'POST'], pathPrefixes: o.paths ?? ['/v1'], hosts: [], limits: o.limits ?? {} });
      return id;
    },
    async close() {
      await broker.close();
      await vault.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function readAll(body: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
