// What `aivault status` reports, in reads that do not grow with the audit log (imported when
// the command runs: it needs the vault).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from '../registry/registry.ts';
import { Vault } from '../vault/vault.ts';

/** The audit part of status: the head's own check, never a walk of the chain (that is `audit verify`). */
export interface AuditStatus {
  /** The records the head says the chain holds. */
  records: number;
  sealed: boolean;
  anchorInStep: boolean;
  problem: string | null;
  fullCheck: 'aivault audit verify';
}

/** What status reports, in reads that do not grow with the audit log. */
export async function vaultStatus(v: Vault, dir: string, registry: Registry) {
  const head = await v.audit.headCheck();
  const audit: AuditStatus = {
    records: head.seq,
    sealed: head.sealed,
    anchorInStep: head.anchorProblem === null,
    problem: head.sealed ? head.anchorProblem : 'the head is missing or its seal is not this vault\'s',
    fullCheck: 'aivault audit verify',
  };
  const socket = join(dir, 'aivault.sock');
  return {
    dir,
    database: Vault.describeLocation(dir),
    engine: v.storage.engine,
    keyProvider: v.keyProvider.kind,
    registry: { providers: registry.providers.size, digest: registry.digest },
    daemonSocket: existsSync(socket) ? socket : null,
    secrets: (await v.storage.listSecrets()).length,
    credentials: (await v.storage.listCredentials()).length,
    capabilities: (await v.storage.listCapabilities()).length,
    agents: (await v.storage.listAgents()).filter((a) => a.status === 'active').length,
    owners: (await v.storage.listOwners()).length,
    audit,
  };
}

