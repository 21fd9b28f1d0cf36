// `aivault capability …`: what agents can be granted, and whether each is ready.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { CapabilityPolicy } from '../../storage/types.ts';
import { collect } from '../collect.ts';
import { agentClientFromEnv, ownerCall } from '../daemon-client.ts';
import { endpointFields } from '../endpoint-fields.ts';
import type { GlobalOptions } from '../context.ts';
import { printFields, printJson, printLine, printTable } from '../output.ts';
import { scopeFromOptions } from '../../vault/scopes.ts';

function policyText(p: CapabilityPolicy | null): string {
  if (!p) return '(none)';
  const parts = [
    p.rateLimitPerMinute ? `${p.rateLimitPerMinute}/min for all callers` : null,
    p.maxRequestBodyBytes ? `request ≤ ${p.maxRequestBodyBytes} B` : null,
    p.maxResponseBodyBytes ? `response ≤ ${p.maxResponseBodyBytes} B` : null,
    p.responseBlock.length ? `${p.responseBlock.length} blocked string${p.responseBlock.length > 1 ? 's' : ''}: ${p.responseBlock.map((b) => JSON.stringify(b)).join(', ')}` : null,
  ].filter(Boolean);
  return parts.length ? parts.join('; ') : '(empty)';
}

/** Why a capability is not ready: secrets missing, or stored but not serving the caller's context. */
export function notReadyText(missing: readonly string[], outOfScope: readonly string[]): string {
  return [missing.length ? `missing ${missing.join(', ')}` : '', outOfScope.length ? `not for this context: ${outOfScope.join(', ')}` : ''].filter(Boolean).join('; ');
}

function wholeNumber(flag: string) {
  return (v: string): number => {
    if (!/^\d{1,15}$/.test(v)) throw new AivaultError('INVALID_ARGUMENT', `${flag} takes a whole number`);
    return Number(v);
  };
}

interface PolicyOptions extends GlobalOptions {
  rateLimitPerMinute?: number;
  maxRequestBodyBytes?: number;
  maxResponseBodyBytes?: number;
  responseBlock?: string[];
  clearResponseBlock?: boolean;
  json?: boolean;
}

interface CreateOptions extends GlobalOptions {
  provider: string;
  credential: string;
  method: string[];
  path: string[];
  host?: string[];
  timeoutMs?: string;
  connectTimeoutMs?: string;
  maxRequestBytes?: string;
  maxResponseBytes?: string;
}

const LIMIT_FLAGS = ['timeoutMs', 'connectTimeoutMs', 'maxRequestBytes', 'maxResponseBytes'] as const;

/** A limit to set, or "default" to return it to its default (null to the API; commander would turn a null into ''). */
function limitValue(flag: string) {
  return (v: string): number | 'default' => {
    if (v === 'default') return v;
    if (!/^\d{1,15}$/.test(v)) throw new AivaultError('INVALID_ARGUMENT', `${flag} takes a whole number, or "default"`);
    return Number(v);
  };
}

function intOption(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

export function registerCapability(program: Command): void {
  const capability = program.command('capability').description('capabilities agents can invoke');

  capability
    .command('create')
    .description('create a custom capability: a credential plus the methods, path prefixes and hosts it may reach')
    .argument('<id>', 'provider/name')
    .requiredOption('--provider <provider>', 'the custom provider')
    .requiredOption('--credential <name>', 'the credential it uses')
    .requiredOption('--method <method>', 'allowed HTTP method (repeatable)', collect)
    .requiredOption('--path <prefix>', 'allowed path prefix, matched at segment boundaries; * is one segment (repeatable)', collect)
    .option('--host <host>', "allowed host (repeatable; default: all the credential's hosts)", collect)
    .option('--timeout-ms <n>', 'total time limit for one invoke (default 30000)')
    .option('--connect-timeout-ms <n>', 'connect time limit (default 10000)')
    .option('--max-request-bytes <n>', 'largest request body (default 10 MiB)')
    .option('--max-response-bytes <n>', 'largest response body (default 32 MiB)')
    .option('--websocket', 'also allow WebSocket upgrades through the gateway (GET; the largest message is --max-response-bytes)')
    .option('--json', 'print as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<CreateOptions & { websocket?: boolean }>();
      const limits = Object.fromEntries(
        Object.entries({ timeoutMs: intOption(o.timeoutMs), connectTimeoutMs: intOption(o.connectTimeoutMs), maxRequestBytes: intOption(o.maxRequestBytes), maxResponseBytes: intOption(o.maxResponseBytes) }).filter(([, v]) => v !== undefined),
      );
      const input = { id, provider: o.provider, credential: o.credential, methods: o.method, pathPrefixes: o.path, hosts: o.host ?? [], limits, ...(o.websocket ? { websocket: true } : {}) };
      const cap = await ownerCall(o, 'capability.create', input);
      if (o.json) printJson(cap);
      else printLine(`created capability ${cap.id}: ${cap.methods.join(',')} ${cap.pathPrefixes.join(' ')} on ${cap.hosts.join(', ')}`);
    });

  capability
    .command('update')
    .description('change a custom capability in place, checked as create checks it; flags not given keep their value')
    .argument('<id>', 'provider/name')
    .option('--credential <name>', 'another credential of the same provider')
    .option('--method <method>', 'allowed HTTP method (repeatable; replaces the list)', collect)
    .option('--path <prefix>', 'allowed path prefix, matched at segment boundaries; * is one segment (repeatable; replaces the list)', collect)
    .option('--host <host>', 'allowed host (repeatable; replaces the list)', collect)
    .option('--all-credential-hosts', "allow all the credential's hosts (as create does without --host)")
    .option('--timeout-ms <n>', 'total time limit for one invoke; "default" for 30000', limitValue('--timeout-ms'))
    .option('--connect-timeout-ms <n>', 'connect time limit; "default" for 10000', limitValue('--connect-timeout-ms'))
    .option('--max-request-bytes <n>', 'largest request body; "default" for 10 MiB', limitValue('--max-request-bytes'))
    .option('--max-response-bytes <n>', 'largest response body; "default" for 32 MiB', limitValue('--max-response-bytes'))
    .option('--websocket', 'also allow WebSocket upgrades through the gateway')
    .option('--no-websocket', 'plain requests only again')
    .option('--json', 'print as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { credential?: string; method?: string[]; path?: string[]; host?: string[]; allCredentialHosts?: boolean; websocket?: boolean; json?: boolean } & Record<(typeof LIMIT_FLAGS)[number], number | 'default' | undefined>>();
      if (o.host && o.allCredentialHosts) throw new AivaultError('INVALID_ARGUMENT', 'give --host or --all-credential-hosts, not both');
      const limits = Object.fromEntries(LIMIT_FLAGS.filter((k) => o[k] !== undefined).map((k) => [k, o[k] === 'default' ? null : o[k]]));
      const change = {
        ...(o.credential ? { credential: o.credential } : {}),
        ...(o.method ? { methods: o.method } : {}),
        ...(o.path ? { pathPrefixes: o.path } : {}),
        ...(o.host ? { hosts: o.host } : o.allCredentialHosts ? { hosts: [] } : {}),
        ...(Object.keys(limits).length > 0 ? { limits } : {}),
        ...(o.websocket !== undefined ? { websocket: o.websocket } : {}),
      };
      if (Object.keys(change).length === 0) throw new AivaultError('INVALID_ARGUMENT', 'give at least one thing to change (see --help)');
      const cap = await ownerCall(o, 'capability.update', { id, ...change });
      if (o.json) printJson(cap);
      else printLine(`updated capability ${cap.id}: ${cap.methods.join(',')} ${cap.pathPrefixes.join(' ')} on ${cap.hosts.join(', ')}${cap.websocket ? ' (websocket)' : ''}`);
    });

  capability
    .command('list')
    .description('enabled capabilities, with their provider and whether they are ready')
    .option('--workspace-id <W>', 'readiness for callers in this workspace')
    .option('--group-id <G>', 'readiness for callers in this group of the workspace')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { workspaceId?: string; groupId?: string }>();
      const context = scopeFromOptions(o);
      const client = await agentClientFromEnv(o);
      if (client) {
        // As the agent: only what it has been granted.
        const granted = await client.capabilities().finally(() => client.close());
        if (o.json) return printJson(granted);
        return printTable(['CAPABILITY', 'PROVIDER', 'READY', 'METHODS', 'PATH PREFIXES', 'EXPIRES'], granted.map((c) => [c.id, c.provider, c.ready ? 'yes' : 'no', c.methods.join(','), c.pathPrefixes.join(' '), c.expiresAt ?? 'never']));
      }
      const views = await ownerCall(o, 'capability.list', context ? { context } : {});
      if (o.json) return printJson(views);
      printTable(
        ['CAPABILITY', 'PROVIDER', 'SOURCE', 'READY', 'METHODS', 'PATH PREFIXES'],
        views.map((v) => [v.id, v.provider, v.source, v.ready ? 'yes' : `no (${notReadyText(v.missingSecrets, v.outOfScope)})`, v.methods.join(','), v.pathPrefixes.join(' ')]),
      );
    });

  capability
    .command('describe')
    .description('show one capability: allow-lists, credential, limits, readiness')
    .argument('<id>')
    .option('--workspace-id <W>', 'as callers in this workspace get it')
    .option('--group-id <G>', 'as callers in this group of the workspace get it')
    .option('--json', 'print as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { workspaceId?: string; groupId?: string }>();
      const context = scopeFromOptions(o);
      const v = await ownerCall(o, 'capability.describe', { id, ...(context ? { context } : {}) });
      if (o.json) return printJson(v);
      printFields([
        ['id', v.id],
        ['provider', `${v.provider} (${v.source})`],
        ['description', v.description ?? ''],
        ['credential', `${v.credential} (${v.auth}), secrets from ${v.secretScope}${v.outOfScope.length ? `; not for this context: ${v.outOfScope.join(', ')}` : ''}`],
        ['enabled', v.enabled ? 'yes' : 'no (store one of its secrets to enable it)'],
        ['ready', v.ready ? 'yes' : v.missingSecrets.length > 0 ? `no (missing ${v.missingSecrets.join(', ')})` : 'no'],
        ['hosts', v.hosts.join(', ')],
        ['methods', v.methods.join(', ')],
        ['paths', v.pathPrefixes.join(', ')],
        ['limits', `timeout ${v.limits.timeoutMs} ms, connect ${v.limits.connectTimeoutMs} ms, request ≤ ${v.limits.maxRequestBytes} B, response ≤ ${v.limits.maxResponseBytes} B`],
        ['websocket', v.websocket ? 'allowed (gateway upgrades)' : 'no'],
        ['policy', policyText(v.policy)],
        ...endpointFields(v),
      ]);
    });

  const policy = capability.command('policy').description("the owner's policy on one capability (built-in or custom), enforced for every caller");
  policy
    .command('set')
    .description('set policy fields (others keep their value): a rate for the whole capability, body caps, strings redacted from responses')
    .argument('<id>')
    .option('--rate-limit-per-minute <n>', 'at most N invokes per minute, all callers and processes together', wholeNumber('--rate-limit-per-minute'))
    .option('--max-request-body-bytes <n>', 'refuse request bodies larger than N bytes', wholeNumber('--max-request-body-bytes'))
    .option('--max-response-body-bytes <n>', 'fail responses larger than N bytes', wholeNumber('--max-response-body-bytes'))
    .option('--response-block <string>', 'replace this literal string (and its encodings) in responses with [REDACTED] (repeatable; replaces the list)', collect, undefined)
    .option('--clear-response-block', 'empty the block list')
    .option('--json', 'print the policy as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<PolicyOptions>();
      const change = {
        ...(o.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: o.rateLimitPerMinute } : {}),
        ...(o.maxRequestBodyBytes !== undefined ? { maxRequestBodyBytes: o.maxRequestBodyBytes } : {}),
        ...(o.maxResponseBodyBytes !== undefined ? { maxResponseBodyBytes: o.maxResponseBodyBytes } : {}),
        ...(o.clearResponseBlock ? { responseBlock: [] } : o.responseBlock ? { responseBlock: o.responseBlock } : {}),
      };
      if (Object.keys(change).length === 0) throw new AivaultError('INVALID_ARGUMENT', 'give at least one policy option (see --help)');
      const next = await ownerCall(o, 'capability.policy.set', { id, ...change });
      if (o.json) return printJson(next);
      printLine(`${id}: ${policyText(next)}`);
    });
  policy
    .command('clear')
    .description('remove the policy from a capability')
    .argument('<id>')
    .option('--json', 'print as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<PolicyOptions>();
      const cleared = await ownerCall(o, 'capability.policy.clear', { id });
      if (o.json) return printJson(cleared);
      printLine(`${id}: policy removed`);
    });

  capability
    .command('delete')
    .description('delete a custom capability')
    .argument('<id>')
    .option('--json', 'print as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const deleted = await ownerCall(o, 'capability.delete', { id });
      if (o.json) printJson(deleted);
      else printLine(`deleted capability ${id}`);
    });
}
