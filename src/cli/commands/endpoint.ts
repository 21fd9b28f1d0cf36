// `aivault endpoint …`: send a built-in provider's traffic to another endpoint (a
// gateway, a regional host, a local stand-in), as a recorded owner decision.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { collect, splitPair } from '../collect.ts';
import type { GlobalOptions } from '../context.ts';
import { ownerCall } from '../daemon-client.ts';
import { printJson, printLine, printTable } from '../output.ts';

interface SetOptions extends GlobalOptions {
  map?: string[];
  tenant?: string[];
  tokenEndpoint?: string;
  allowHttp?: boolean;
  allowPrivateNetwork?: boolean;
}

export function registerEndpoint(program: Command): void {
  const endpoint = program.command('endpoint').description("redirect a built-in provider's hosts (and token endpoint) elsewhere");

  endpoint
    .command('set')
    .description("send a built-in provider's traffic to other hosts; agents still address the provider's own hosts")
    .argument('<provider>')
    .option('--tenant <host>', "bind a wildcard host to the owner's own tenant, e.g. myproject.supabase.co for *.supabase.co: the key goes nowhere else (repeatable)", collect)
    .option('--map <original=replacement>', 'e.g. api.openai.com=gateway.internal:8443, or a bound tenant to a stand-in (repeatable)', collect)
    .option('--token-endpoint <url>', 'another OAuth2 token endpoint (o_auth2 providers)')
    .option('--allow-http', 'owner decision: the replacements speak plain http')
    .option('--allow-private-network', 'owner decision: the replacements may be loopback or private addresses')
    .option('--json', 'print as JSON')
    .action(async (provider: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<SetOptions>();
      const hosts: Record<string, string> = {};
      for (const raw of o.map ?? []) {
        try {
          const [from, to] = splitPair(raw);
          hosts[from.trim().toLowerCase()] = to.trim();
        } catch {
          throw new AivaultError('INVALID_ARGUMENT', '--map takes ORIGINAL=REPLACEMENT');
        }
      }
      const input = { provider, hosts, ...(o.tenant ? { tenants: o.tenant } : {}), ...(o.tokenEndpoint ? { tokenEndpoint: o.tokenEndpoint } : {}), allowHttp: o.allowHttp === true, allowPrivateNetwork: o.allowPrivateNetwork === true };
      const record = await ownerCall(o, 'endpoint.set', input);
      if (o.json) return printJson(record);
      for (const [from, to] of Object.entries(record.hosts)) printLine(from.startsWith('*.') ? `${provider}: ${from} bound to ${to.split(',').join(', ')}` : `${provider}: ${from} -> ${record.allowHttp ? 'http' : 'https'}://${to}`);
      if (record.tokenEndpoint) printLine(`${provider}: token endpoint -> ${record.tokenEndpoint}`);
    });

  endpoint
    .command('list')
    .description('list endpoint overrides')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const list = await ownerCall(o, 'endpoint.list', {});
      if (o.json) return printJson(list);
      printTable(
        ['PROVIDER', 'HOSTS', 'TOKEN ENDPOINT', 'HTTP', 'PRIVATE'],
        list.map((r) => [r.provider, Object.entries(r.hosts).map(([a, b]) => `${a}->${b}`).join(' '), r.tokenEndpoint ?? '-', r.allowHttp ? 'yes' : 'no', r.allowPrivateNetwork ? 'yes' : 'no']),
      );
    });

  endpoint
    .command('clear')
    .description("remove a provider's endpoint override")
    .argument('<provider>')
    .option('--json', 'print {provider, cleared} as JSON')
    .action(async (provider: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { json?: boolean }>();
      const cleared = await ownerCall(o, 'endpoint.clear', { provider });
      if (o.json) return printJson(cleared);
      printLine(`${provider}: endpoint override removed`);
    });
}
