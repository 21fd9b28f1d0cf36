// `aivault status` and `aivault explain CODE`.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AivaultError, categoryOf, isErrorCode } from '../../errors.ts';
import { builtinRegistry } from '../../registry/registry.ts';
import { withVault, vaultDir, type GlobalOptions } from '../context.ts';
import { HINTS } from '../explain.ts';
import { printFields, printJson, printLine } from '../output.ts';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .option('--json', 'print as JSON')
    .description('where the vault is, how it is unlocked, and what it holds (counts only)')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const dir = vaultDir(o);
      const registry = await builtinRegistry();
      const { Vault } = await import('../../vault/vault.ts');
      const socket = join(dir, 'aivault.sock');
      const status = await withVault(o, async (v) => {
        const verify = await v.audit.verify();
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
          audit: { records: verify.count, intact: verify.ok },
        };
      });
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
        ['audit', `${status.audit.records} records, ${status.audit.intact ? 'chain intact' : 'CHAIN BROKEN (aivault audit verify)'}`],
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
