// `aivault status` and `aivault explain CODE`.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AivaultError, categoryOf, isErrorCode } from '../../errors.ts';
import { builtinRegistry, type Registry } from '../../registry/registry.ts';
import { Vault } from '../../vault/vault.ts';
import { withVault, vaultDir, type GlobalOptions } from '../context.ts';
import { HINTS } from '../explain.ts';
import { printFields, printJson, printLine } from '../output.ts';

/** The audit part of status: the head's own check, never a walk of the chain (that is `audit verify`). */
interface AuditStatus {
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

function auditLine(a: AuditStatus): string {
  const state = a.problem === null ? `head sealed at seq ${a.records}, anchor in step` : `PROBLEM: ${a.problem}`;
  return `${state}; full check: ${a.fullCheck}`;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .option('--json', 'print as JSON')
    .description('where the vault is, how it is unlocked, and what it holds (counts only)')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const dir = vaultDir(o);
      const registry = await builtinRegistry();
      const status = await withVault(o, (v) => vaultStatus(v, dir, registry));
      if (o.json) return printJson(status);
      printFields([
        ['vault', status.dir],
        ['engine', `${status.engine} (${status.database})`],
        ['key provider', status.keyProvider],
        ['registry', `${status.registry.providers} built-in providers, sha256 ${status.registry.digest.slice(0, 16)}…`],
        ['daemon socket', status.daemonSocket ?? 'none (aivault serve is not running here)'],
        ['secrets', String(status.secrets)],
        ['custom credentials', String(status.credentials)],
        ['custom capabilities', String(status.capabilities)],
        ['active agents', String(status.agents)],
        ['owners', String(status.owners)],
        ['audit', auditLine(status.audit)],
      ]);
    });

  program
    .command('explain')
    .argument('<code>', 'an error code, e.g. PATH_NOT_ALLOWED')
    .option('--json', 'print as JSON')
    .description('what an error code means, its exit code, and what to do')
    .action(async (code: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const upper = code.toUpperCase();
      if (!isErrorCode(upper)) throw new AivaultError('INVALID_ARGUMENT', 'not an aivault error code; see docs/errors.md');
      const c = upper;
      const hint = HINTS[c];
      if (o.json) return printJson({ code: c, exit: categoryOf(c).exit, hint });
      printLine(`${c} (exit ${categoryOf(c).exit}): ${hint}`);
    });
}
