// The vault the daemon benchmarks serve: one key for a loopback upstream, one capability on
// it, one agent granted it. Written before the daemon starts; the agent's token comes back.

import { composeServices } from '../src/services.ts';
import { builtinRegistry } from '../src/registry/registry.ts';
import { Vault } from '../src/vault/vault.ts';

export interface AgentVault {
  dir: string;
  masterKey: string;
  databaseUrl?: string;
  /** The upstream, host:port. */
  host: string;
  /** The API key the upstream gets, as `Authorization: Bearer`. */
  key: string;
  /** The capability: `bench/<name>`, one method on one path prefix. */
  capability: { name: string; method: string; path: string; websocket?: boolean };
}

export async function agentVault(o: AgentVault): Promise<string> {
  const vault = await Vault.init({ dir: o.dir, keyProvider: 'env', env: { AIVAULT_MASTER_KEY: o.masterKey }, ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}) });
  const { broker, definitions, agents } = composeServices(vault, await builtinRegistry());
  const id = `bench/${o.capability.name}`;
  try {
    const secret = await vault.createSecret({ name: 'BENCH_KEY', value: Buffer.from(o.key) });
    await definitions.createCredential({ name: 'bench', provider: 'bench', auth: { header: { header_name: 'authorization', value_template: 'Bearer {{secret}}' } }, secretRefs: { secret: secret.ref }, hosts: [o.host], allowHttp: true, allowPrivateNetwork: true });
    await definitions.createCapability({ id, provider: 'bench', credential: 'bench', methods: [o.capability.method], pathPrefixes: [o.capability.path], hosts: [], ...(o.capability.websocket ? { websocket: true } : {}) });
    const { token } = await agents.create('bench-agent');
    await agents.grant({ agent: 'bench-agent', capability: id }, [o.capability.method]);
    return token!;
  } finally {
    await broker.close();
    await vault.close();
  }
}
