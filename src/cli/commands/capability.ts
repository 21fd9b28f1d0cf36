// `aivault capability …`: what agents can be granted, and whether each is ready.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { builtinCredentialStatus, enabledBuiltinCapabilities, type BuiltinCapabilityView } from '../../registry/provisioning.ts';
import { builtinRegistry } from '../../registry/registry.ts';
import { authKind } from '../../registry/types.ts';
import { withVault, type GlobalOptions } from '../context.ts';
import { printFields, printJson, printTable } from '../output.ts';

function view(v: BuiltinCapabilityView, enabled: boolean) {
  return {
    id: v.capability.id,
    provider: v.capability.provider,
    source: 'builtin' as const,
    description: v.capability.description ?? null,
    credential: v.capability.provider,
    enabled,
    ready: enabled && v.credential.ready,
    missingSecrets: v.credential.missing,
    hosts: v.capability.allow.hosts,
    methods: v.capability.allow.methods,
    pathPrefixes: v.capability.allow.pathPrefixes,
  };
}

export function registerCapability(program: Command): void {
  const capability = program.command('capability').description('capabilities agents can invoke');

  capability
    .command('list')
    .description('enabled capabilities, with their provider and whether they are ready')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const registry = await builtinRegistry();
      const views = (await withVault(opts, (vault) => enabledBuiltinCapabilities(vault, registry))).map((v) => view(v, true));
      if (opts.json) return printJson(views);
      printTable(
        ['CAPABILITY', 'PROVIDER', 'SOURCE', 'READY', 'METHODS', 'PATH PREFIXES'],
        views.map((v) => [v.id, v.provider, v.source, v.ready ? 'yes' : `no (missing ${v.missingSecrets.join(', ')})`, v.methods.join(','), v.pathPrefixes.join(' ')]),
      );
    });

  capability
    .command('describe')
    .description('show one capability: allow-lists, credential, readiness')
    .argument('<id>')
    .option('--json', 'print as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const registry = await builtinRegistry();
      const cap = registry.capabilities.get(id);
      if (!cap) throw new AivaultError('CAPABILITY_NOT_FOUND', `no capability "${id}"`);
      const provider = registry.provider(cap.provider);
      const credential = await withVault(opts, (vault) => builtinCredentialStatus(vault, provider));
      const v = { ...view({ capability: cap, credential }, credential.provisioned), auth: authKind(provider.auth), secrets: credential.secrets.map(({ name, required, secretId }) => ({ name, required, present: secretId !== null })) };
      if (opts.json) return printJson(v);
      printFields([
        ['id', v.id],
        ['provider', `${v.provider} (${v.source})`],
        ['description', v.description ?? ''],
        ['auth', v.auth],
        ['enabled', v.enabled ? 'yes' : 'no (store one of its secrets to enable it)'],
        ['ready', v.ready ? 'yes' : v.missingSecrets.length > 0 ? `no (missing ${v.missingSecrets.join(', ')})` : 'no'],
        ['hosts', v.hosts.join(', ')],
        ['methods', v.methods.join(', ')],
        ['paths', v.pathPrefixes.join(', ')],
        ['secrets', v.secrets.map((s) => `${s.name}${s.required ? '' : ' (optional)'}: ${s.present ? 'present' : 'missing'}`).join('; ')],
      ]);
    });
}
