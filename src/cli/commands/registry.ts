// `aivault registry …`: browse the built-in providers and validate provider files.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { neededPlaceholders } from '../../registry/auth-inputs.ts';
import { builtinRegistry } from '../../registry/registry.ts';
import { authKind, type RegistryProvider } from '../../registry/types.ts';
import type { RegistryIssue } from '../../registry/validate.ts';
import type { GlobalOptions } from '../context.ts';
import { printFields, printJson, printLine, printTable } from '../output.ts';

/** What `registry show` reveals: structure and secret names, never values. */
export function providerSummary(p: RegistryProvider) {
  const { required } = neededPlaceholders(p.auth);
  return {
    provider: p.provider,
    description: p.description ?? null,
    docs: p.docs ?? null,
    auth: authKind(p.auth),
    hosts: p.hosts,
    secrets: Object.entries(p.vaultSecrets ?? {}).map(([name, placeholder]) => ({ name, placeholder, required: required.includes(placeholder) })),
    priority: p.priority ?? 0,
    alternatives: (p.alternatives ?? []).map((a) => {
      const needed = neededPlaceholders(a.auth).required;
      return {
        id: a.id,
        description: a.description ?? null,
        priority: a.priority,
        auth: authKind(a.auth),
        hosts: a.hosts ?? null,
        pathPrefix: a.pathPrefix ?? null,
        secrets: Object.entries(a.vaultSecrets).map(([name, placeholder]) => ({ name, placeholder, required: needed.includes(placeholder) })),
      };
    }),
    capabilities: p.capabilities.map((c) => ({ id: c.id, description: c.description ?? null, ...c.allow })),
  };
}

export function registerRegistry(program: Command): void {
  const registry = program.command('registry').description('the built-in provider registry');

  registry
    .command('list')
    .description('list built-in providers')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const reg = await builtinRegistry();
      const providers = [...reg.providers.values()].map(providerSummary);
      if (opts.json) return printJson({ digest: reg.digest, providers });
      printTable(
        ['PROVIDER', 'AUTH', 'SECRETS', 'HOSTS', 'CAPABILITIES'],
        providers.map((p) => [p.provider, p.auth, p.secrets.map((s) => s.name).join(','), p.hosts.join(','), String(p.capabilities.length)]),
      );
    });

  registry
    .command('show')
    .description('show one provider: auth kind, hosts, capabilities, required secrets')
    .argument('<provider>')
    .option('--json', 'print as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const summary = providerSummary((await builtinRegistry()).provider(id));
      if (opts.json) return printJson(summary);
      printFields([
        ['provider', summary.provider],
        ['description', summary.description ?? ''],
        ['docs', summary.docs ?? ''],
        ['auth', summary.auth],
        ['hosts', summary.hosts.join(', ')],
        ['secrets', summary.secrets.map((s) => `${s.name}${s.required ? '' : ' (optional)'}`).join(', ')],
        ...summary.alternatives.map((a): [string, string] => [
          `alternative ${a.id}`,
          `${a.auth}, priority ${a.priority} (main: ${summary.priority}); ${a.secrets.map((s) => s.name).join(', ')}${a.hosts ? `; via ${a.hosts.join(', ')}` : ''}${a.pathPrefix ? ` under ${a.pathPrefix}` : ''}`,
        ]),
      ]);
      printLine();
      printTable(
        ['CAPABILITY', 'METHODS', 'PATH PREFIXES', 'HOSTS'],
        summary.capabilities.map((c) => [c.id, c.methods.join(','), c.pathPrefixes.join(' '), c.hosts.join(',')]),
      );
    });

  registry
    .command('validate')
    .description('check provider files against the schema and the cross-field rules')
    .argument('<files...>')
    .option('--json', 'print as JSON')
    .action(async (files: string[], _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const { formatIssue, validateProviderText } = await import('../../registry/validate.ts');
      const issues: RegistryIssue[] = [];
      for (const file of files) {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (err) {
          issues.push({ file, pointer: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
          continue;
        }
        issues.push(...validateProviderText(text, file).issues);
      }
      if (opts.json) printJson({ ok: issues.length === 0, issues });
      else if (issues.length === 0) printLine(`ok: ${files.length} file(s) valid`);
      else for (const issue of issues) printLine(formatIssue(issue));
      if (issues.length > 0) throw new AivaultError('REGISTRY_INVALID', `${issues.length} problem(s) found`);
    });
}
