// npm run bench:owner -- the owner surfaces that read the whole vault: `status` and the
// list operations, in process, over a vault built fast through the storage API (not the CLI).
// BENCH_SECRETS (default 20 000) secrets, BENCH_RECORDS (default 200 000) audit records,
// BENCH_DEFINITIONS (default 200) custom credentials with a capability each. Prints the
// median of BENCH_RUNS (default 5) runs of each, in ms.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vaultStatus } from '../src/cli/vault-status.ts';
import { runOwnerOperation } from '../src/owner/operations.ts';
import { builtinRegistry } from '../src/registry/registry.ts';
import { composeServices } from '../src/services.ts';
import { Vault } from '../src/vault/vault.ts';

const SECRETS = Number(process.env.BENCH_SECRETS ?? 20_000);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 200_000);
const DEFINITIONS = Math.min(Number(process.env.BENCH_DEFINITIONS ?? 200), SECRETS);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const dir = join(mkdtempSync(join(tmpdir(), 'aivault-bench-owner-')), 'vault');
const env = { AIVAULT_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };
try {
  const vault = await Vault.init({ dir, keyProvider: 'env', env });
  const registry = await builtinRegistry();
  const services = composeServices(vault, registry);
  for (let i = 0; i < SECRETS; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, SECRETS - i) }, (_, j) => ({ name: `S_${i + j}`, value: Buffer.from(`value-${i + j}-abcdefghijklmnopqrstuvwxyz`) }));
    await vault.importSecrets(batch);
  }
  for (let i = 0; i < DEFINITIONS; i++) {
    const ref = (await vault.describeSecret(`S_${i}`)).ref;
    await runOwnerOperation(services, 'credential.create', { name: `c${i}`, provider: `p${i}`, auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: ref }, hosts: [`api${i}.example.com`] });
    await runOwnerOperation(services, 'capability.create', { id: `p${i}/api`, provider: `p${i}`, credential: `c${i}`, methods: ['GET'], pathPrefixes: ['/v1'] });
  }
  // Appends arriving together share one commit: thousands at a time.
  for (let i = 0; i < RECORDS; i += 5000) {
    await Promise.all(Array.from({ length: Math.min(5000, RECORDS - i) }, () => vault.audit.append({ actor: 'agent:bench', action: 'invoke', capability: 'p0/api', decision: 'allow' })));
  }
  console.log(`vault: ${SECRETS} secrets, ${DEFINITIONS} custom credentials and capabilities, ${RECORDS} audit records more`);

  const measure = async (label: string, fn: () => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      await fn();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(`${label.padEnd(16)} median ${times[Math.floor(RUNS / 2)]!.toFixed(0).padStart(6)} ms  (min ${times[0]!.toFixed(0)}, max ${times.at(-1)!.toFixed(0)})`);
  };
  await measure('status', () => vaultStatus(vault, dir, registry));
  for (const op of ['secrets.list', 'credential.list', 'capability.list']) await measure(op, () => runOwnerOperation(services, op, {}));
  await services.close();
  await vault.close();
} finally {
  rmSync(join(dir, '..'), { recursive: true, force: true });
}
