// `aivault status` and `aivault explain CODE`.

import type { Command } from 'commander';
import type { AuditStatus } from '../vault-status.ts';
import { AivaultError, categoryOf, isErrorCode } from '../../errors.ts';
import { builtinRegistry } from '../../registry/registry.ts';
import { withVault, vaultDir, type GlobalOptions } from '../context.ts';
import { HINTS } from '../explain.ts';
import { printFields, printJson, printLine } from '../output.ts';

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
      const { vaultStatus } = await import('../vault-status.ts');
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
