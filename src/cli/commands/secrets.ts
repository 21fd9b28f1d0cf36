// `aivault secrets …`: write-only secret management. No subcommand prints a value.

import { isUtf8 } from 'node:buffer';
import type { Command } from 'commander';
import { AivaultError, EXIT, OUTCOME_EXIT } from '../../errors.ts';
import { SCOPE_RULE, SECRET_NAME_RULE, assertSecretName } from '../../vault/names.ts';
import { scopeFromOptions } from '../../vault/scopes.ts';
import type { SecretInfo } from '../../vault/vault.ts';
import { withVault, type GlobalOptions } from '../context.ts';
import { ownerCall } from '../daemon-client.ts';
import { readSecretValue, type ValueOptions } from '../input.ts';
import { registerIngest } from './ingest.ts';
import { collect } from '../collect.ts';
import { registerImport } from './import.ts';
import { isInteractive, readLine } from '../prompt.ts';
import { note, printFields, printJson, printLine, printTable } from '../output.ts';

interface ScopeOptions extends GlobalOptions {
  scope?: string;
  workspaceId?: string;
  groupId?: string;
}

function addValueOptions(cmd: Command): Command {
  return cmd
    .option('--value <value>', 'the value (visible in the process list and shell history; prefer --value-stdin)')
    .option('--value-stdin', 'read the value from stdin (one trailing newline dropped)')
    .option('--value-file <path>', 'read the value from a file (one trailing newline dropped)');
}

/** A value as the owner call carries it: text, as every credential injects it (other bytes would not survive). */
function valueText(value: Buffer): string {
  if (!isUtf8(value)) throw new AivaultError('INVALID_ARGUMENT', 'a secret value must be UTF-8 text');
  return value.toString('utf8');
}

function versionSummary(info: SecretInfo): string {
  return info.versions.map((v) => `v${v.version}${v.current ? ' (current)' : ''} ${v.fingerprint} ${v.createdAt}`).join('; ');
}

function printInfo(info: SecretInfo): void {
  printFields([
    ['id', info.id],
    ['ref', info.ref],
    ['name', info.name],
    ['scope', info.scope],
    ['provider', info.pinnedProvider ?? '(custom, not pinned)'],
    ['aliases', info.aliases.join(', ') || '(none)'],
    ['groups', info.groups.join(', ') || '(none)'],
    ['description', info.description ?? ''],
    ['version', String(info.currentVersion)],
    ['fingerprint', info.fingerprint],
    ...(info.allowShort ? [['short value', 'allowed by the owner: not scrubbed from responses if under 8 bytes'] as [string, string]] : []),
    ['versions', versionSummary(info)],
    ['created', info.createdAt],
    ['updated', info.updatedAt],
  ]);
}

async function confirmDelete(opts: GlobalOptions, secret: { secret: string; scope?: string }, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!isInteractive()) throw new AivaultError('CONFIRMATION_REQUIRED', 'deleting a secret needs --yes when not run from a terminal');
  const info = await ownerCall(opts, 'secrets.describe', secret);
  const answer = await readLine(`Delete ${info.name} (${info.scope}, ${info.ref})? Type the name to confirm: `);
  if (answer.trim() !== info.name) throw new AivaultError('CONFIRMATION_REQUIRED', 'not confirmed; nothing deleted');
}

export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('store, rotate and delete secrets (values are write-only)');

  addValueOptions(
    secrets
      .command('create')
      .description(`store a new secret; prints its reference vault:secret:<id>. Names: ${SECRET_NAME_RULE}`)
      .requiredOption('--name <NAME>', 'canonical name, e.g. OPENAI_API_KEY'),
  )
    .option('--scope <scope>', `where the secret applies (default global): ${SCOPE_RULE}`)
    .option('--workspace-id <W>', 'the workspace (with --scope workspace or group)')
    .option('--group-id <G>', 'the group of that workspace (with --scope group)')
    .option('--description <text>', 'a note for people (never the value)')
    .option('--alias <alias>', 'another name for it: a lower-case label (repeatable)', collect)
    .option('--allow-short', 'store a value under 8 bytes, which aivault cannot scrub from responses (an upstream that echoes it hands it to the agent)')
    .option('--json', 'print the new secret as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions & ValueOptions & { name: string; description?: string; alias?: string[]; allowShort?: boolean }>();
      assertSecretName(opts.name); // before asking for a value that would then be refused
      opts.scope = scopeFromOptions(opts);
      const value = await readSecretValue(opts);
      try {
        const info = await ownerCall(opts, 'secrets.create', {
          name: opts.name,
          value: valueText(value),
          ...(opts.scope ? { scope: opts.scope } : {}),
          ...(opts.description ? { description: opts.description } : {}),
          ...(opts.alias ? { aliases: opts.alias } : {}),
          ...(opts.allowShort ? { allowShort: true } : {}),
        });
        if (opts.json) printJson(info);
        else printLine(info.ref);
        const status = info.provisioning;
        if (status && !opts.json) {
          note(
            status.ready
              ? `pinned to provider ${status.provider}; its capabilities are ready (aivault capability list)`
              : `pinned to provider ${status.provider}; its capabilities wait for ${status.missingSecrets.join(', ')}`,
          );
          if (status.unboundTenants.length > 0) note(`bind your own tenant: aivault endpoint set ${status.provider} --tenant HOST`);
        }
      } finally {
        value.fill(0);
      }
    });

  secrets
    .command('list')
    .description('list secrets (metadata only)')
    .option('--scope <scope>', 'only this scope')
    .option('--workspace-id <W>', 'the workspace (with --scope workspace or group)')
    .option('--group-id <G>', 'the group of that workspace (with --scope group)')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions>();
      opts.scope = scopeFromOptions(opts);
      const list = await ownerCall(opts, 'secrets.list', opts.scope ? { scope: opts.scope } : {});
      if (opts.json) return printJson(list);
      if (list.length === 0) return note('no secrets yet: aivault secrets create --name NAME --value-stdin');
      printTable(
        ['NAME', 'SCOPE', 'VERSION', 'FINGERPRINT', 'PROVIDER', 'UPDATED', 'REF'],
        list.map((s) => [s.name, s.scope, String(s.currentVersion), s.fingerprint, s.pinnedProvider ?? '-', s.updatedAt, s.ref]),
      );
    });

  secrets
    .command('describe')
    .description('show one secret\'s metadata: id, scope, pin, versions, a keyed fingerprint; never the value')
    .argument('<secret>', 'NAME, id or vault:secret:<id>')
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--json', 'print as JSON')
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions>();
      const info = await ownerCall(opts, 'secrets.describe', { secret: reference, ...(opts.scope ? { scope: opts.scope } : {}) });
      if (opts.json) printJson(info);
      else printInfo(info);
    });

  addValueOptions(
    secrets
      .command('rotate')
      .description('store a new value as the current version; the previous one is kept for rollback')
      .argument('<secret>', 'NAME, id or vault:secret:<id>'),
  )
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--allow-short', 'store a value under 8 bytes, which aivault cannot scrub from responses (an upstream that echoes it hands it to the agent)')
    .option('--json', 'print the secret as JSON')
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions & ValueOptions & { allowShort?: boolean }>();
      const value = await readSecretValue(opts);
      try {
        const info = await ownerCall(opts, 'secrets.rotate', { secret: reference, value: valueText(value), ...(opts.scope ? { scope: opts.scope } : {}), ...(opts.allowShort ? { allowShort: true } : {}) });
        if (opts.json) printJson(info);
        else printLine(`rotated ${info.name} to version ${info.currentVersion} (${info.fingerprint})`);
      } finally {
        value.fill(0);
      }
    });

  secrets
    .command('rollback')
    .description('make the previous kept version current again (run twice to undo)')
    .argument('<secret>', 'NAME, id or vault:secret:<id>')
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--json', 'print the secret as JSON')
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions>();
      const info = await ownerCall(opts, 'secrets.rollback', { secret: reference, ...(opts.scope ? { scope: opts.scope } : {}) });
      if (opts.json) printJson(info);
      else printLine(`rolled ${info.name} back to version ${info.currentVersion} (${info.fingerprint})`);
    });

  secrets
    .command('delete')
    .description('delete a secret and all its versions')
    .argument('<secret>', 'NAME, id or vault:secret:<id>')
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'print the deleted secret as JSON')
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions & { yes?: boolean }>();
      const args = { secret: reference, ...(opts.scope ? { scope: opts.scope } : {}) };
      await confirmDelete(opts, args, opts.yes);
      const info = await ownerCall(opts, 'secrets.delete', args);
      if (opts.json) printJson(info);
      else printLine(`deleted ${info.name} (${info.ref})`);
    });

  secrets
    .command('update')
    .description('rename a secret or change its aliases (its value changes only by rotate)')
    .argument('[secret]', 'NAME, alias, id or vault:secret:<id>')
    .option('--id <id>', 'the secret id (instead of the argument)')
    .option('--name <NAME>', 'the new canonical name (not for secrets pinned to a provider)')
    .option('--alias <alias>', 'add an alias: a lower-case label (repeatable)', collect)
    .option('--clear-aliases', 'remove every alias (then add any --alias given)')
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--json', 'print the secret as JSON')
    .action(async (reference: string | undefined, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions & { id?: string; name?: string; alias?: string[]; clearAliases?: boolean }>();
      const target = opts.id ?? reference;
      if (target === undefined || (opts.id !== undefined && reference !== undefined)) throw new AivaultError('INVALID_ARGUMENT', 'name the secret once: an argument or --id');
      const info = await ownerCall(opts, 'secrets.update', {
        secret: target,
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.alias ? { aliases: opts.alias } : {}),
        ...(opts.clearAliases ? { clearAliases: true } : {}),
        ...(opts.scope ? { scope: opts.scope } : {}),
      });
      if (opts.json) return printJson(info);
      printLine(`${info.name} (${info.scope}, ${info.ref})${info.aliases.length ? ` aliases: ${info.aliases.join(', ')}` : ''}`);
    });

  for (const [verb, attached] of [['attach-group', true], ['detach-group', false]] as const) {
    secrets
      .command(verb)
      .description(attached
        ? "let a group's callers use a global secret (a global secret serves no group until attached)"
        : "stop a group's callers from using a global secret")
      .argument('[secret]', 'NAME, alias, id or vault:secret:<id> (a global secret)')
      .option('--id <id>', 'the secret id (instead of the argument)')
      .requiredOption('--workspace-id <W>', 'the workspace of the group')
      .requiredOption('--group-id <G>', 'the group')
      .option('--scope <scope>', 'scope of the secret, when the name exists in several (only global secrets are attached)')
      .option('--json', 'print the secret as JSON')
      .action(async (reference: string | undefined, _o: unknown, cmd: Command) => {
        const opts = cmd.optsWithGlobals<ScopeOptions & { id?: string; workspaceId: string; groupId: string }>();
        const target = opts.id ?? reference;
        if (target === undefined || (opts.id !== undefined && reference !== undefined)) throw new AivaultError('INVALID_ARGUMENT', 'name the secret once: an argument or --id');
        scopeFromOptions({ workspaceId: opts.workspaceId, groupId: opts.groupId }); // checks both ids
        const args = { secret: target, workspaceId: opts.workspaceId, groupId: opts.groupId, ...(opts.scope ? { scope: opts.scope } : {}) };
        const info = await ownerCall(opts, `secrets.${verb}`, args);
        if (opts.json) return printJson(info);
        printLine(`${info.name} (${info.ref}) groups: ${info.groups.join(', ') || '(none)'}`);
      });
  }

  registerIngest(secrets);
  registerImport(secrets);

  secrets
    .command('validate')
    .description("ask the provider whether the stored key works, with the provider's declared cheap request; prints valid, invalid or indeterminate, never the key or the response")
    .argument('<secret>', 'NAME, id or vault:secret:<id> (pinned to a registry provider)')
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--json', 'print {name, scope, provider, verdict, reason, capability, status} as JSON')
    .addHelpText('after', '\nExit status: 0 valid, 8 invalid (the provider refused the key), 9 indeterminate.')
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions>();
      const result = await ownerCall(opts, 'secrets.validate', { secret: reference, ...(opts.scope ? { scope: opts.scope } : {}) });
      if (opts.json) printJson(result);
      else printLine(`${result.name}: ${result.verdict} (${result.reason}${result.capability ? ` via ${result.capability}` : ''})`);
      process.exitCode = result.verdict === 'valid' ? EXIT.OK : result.verdict === 'invalid' ? EXIT.UPSTREAM : EXIT.UNAVAILABLE;
    });

  secrets
    .command('compare')
    .description('is the value on stdin the stored one? (constant time, rate-limited, audited; prints match or no match)')
    .argument('<secret>', 'NAME, id or vault:secret:<id>')
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--json', 'print {match} as JSON')
    .addHelpText('after', `\nExit status: 0 match, ${OUTCOME_EXIT.NO_MATCH.exit} no match; an error exits with its code's exit status (aivault explain CODE).`)
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions>();
      const candidate = await readSecretValue({ valueStdin: true });
      try {
        const { match } = await ownerCall(opts, 'secrets.compare', { secret: reference, value: valueText(candidate), ...(opts.scope ? { scope: opts.scope } : {}) });
        if (opts.json) printJson({ match });
        else printLine(match ? 'match' : 'no match');
        process.exitCode = match ? EXIT.OK : OUTCOME_EXIT.NO_MATCH.exit;
      } finally {
        candidate.fill(0);
      }
    });

  secrets
    .command('prove')
    .description('HMAC-SHA256 of a challenge keyed by the secret: whoever holds the same key can check it (rate-limited, audited)')
    .argument('<secret>', 'NAME, id or vault:secret:<id>')
    .requiredOption('--challenge <text>', 'the challenge, 8-1024 characters')
    .option('--scope <scope>', 'scope, when the name exists in several')
    .option('--json', 'print {proof} as JSON')
    .action(async (reference: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions & { challenge: string }>();
      const proved = await ownerCall(opts, 'secrets.prove', { secret: reference, challenge: opts.challenge, ...(opts.scope ? { scope: opts.scope } : {}) });
      if (opts.json) printJson(proved);
      else printLine(proved.proof);
    });

  secrets
    .command('verify')
    .description("check the vault's files and its state against its seal, then decrypt every kept version (of the named secrets, or all); prints no value")
    .argument('[secrets...]', 'NAME, id or vault:secret:<id>')
    .option('--scope <scope>', 'scope, when a name exists in several')
    .option('--json', 'print as JSON')
    .action(async (references: string[], _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<ScopeOptions>();
      const { problems, checks } = await withVault(opts, (vault) => vault.verifySecrets(references, opts.scope), { toVerify: true });
      const failed = checks.filter((c) => !c.ok);
      if (opts.json) printJson({ ok: failed.length === 0 && problems.length === 0, problems, checks });
      else {
        for (const p of problems) printLine(`FAIL vault: ${p}`);
        for (const c of checks) printLine(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name} ${c.scope}${c.code ? ` ${c.code}` : ''}`);
      }
      if (problems.length > 0) throw new AivaultError('VAULT_TAMPERED', `the vault does not check out: ${problems[0]}`);
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new AivaultError(first.code === 'VAULT_CORRUPTED' || first.code === 'VAULT_TAMPERED' ? first.code : 'VAULT_DECRYPT_FAILED', `${failed.length} secret(s) failed to open`);
      }
    });

}
