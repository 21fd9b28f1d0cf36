// `aivault agent …`, `aivault grant …`, `aivault revoke-grant …`: who may invoke what.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { GrantRecord } from '../../storage/types.ts';
import type { GlobalOptions } from '../context.ts';
import { ownerCall } from '../daemon-client.ts';
import { note, printFields, printJson, printLine, printTable } from '../output.ts';
import { notReadyText } from './capability.ts';
import { scopeFromOptions } from '../../vault/scopes.ts';

function rateText(g: GrantRecord): string {
  if (!g.rate) return '-';
  const unit = { 1000: 's', 60000: 'min', 3600000: 'hour', 86400000: 'day' }[g.rate.periodMs] ?? `${g.rate.periodMs}ms`;
  return `${g.rate.count}/${unit}`;
}

export function registerAgent(program: Command): void {
  const agent = program.command('agent').description('agent identities (what holds an agent token or key instead of secrets)');

  agent
    .command('create')
    .description('register an agent; prints its token once (unless --public-key is given)')
    .argument('<name>')
    .option('--public-key <file>', 'an Ed25519 public key (PEM) the agent signs requests with, instead of a token')
    .option('--workspace-id <W>', "the workspace the agent works in: it gets that workspace's secrets (the agent cannot change it)")
    .option('--group-id <G>', "the group of that workspace: the group's secrets, then the workspace's, then global ones attached to the group")
    .option('--json', 'print {id, token} as JSON')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { publicKey?: string; workspaceId?: string; groupId?: string }>();
      const context = scopeFromOptions(o);
      let publicKey: string | undefined;
      if (o.publicKey !== undefined) {
        publicKey = await readFile(o.publicKey, 'utf8').catch(() => {
          throw new AivaultError('INVALID_ARGUMENT', 'cannot read --public-key');
        });
        if (!publicKey.includes('-----BEGIN PUBLIC KEY-----')) throw new AivaultError('INVALID_ARGUMENT', '--public-key must be a PEM public key');
      }
      const created = await ownerCall(o, 'agent.create', { name, ...(publicKey ? { publicKey } : {}), ...(context ? { context } : {}) });
      if (o.json) return printJson(created);
      printLine(`created agent ${created.name} (${created.id})`);
      if (created.token) {
        printLine(created.token);
        note('this token is shown once; aivault keeps only its hash. Give it to the agent as AIVAULT_AGENT_TOKEN.');
      }
    });

  agent
    .command('context')
    .description("bind an agent to a workspace or group (whose secrets it then gets), or back to global")
    .argument('<agent>', 'name or id')
    .option('--workspace-id <W>', 'the workspace')
    .option('--group-id <G>', 'the group of that workspace')
    .option('--global', 'no workspace or group: global secrets only')
    .option('--json', 'print the agent as JSON')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { workspaceId?: string; groupId?: string; global?: boolean }>();
      const context = scopeFromOptions(o);
      if ((context === undefined) === (o.global !== true)) throw new AivaultError('INVALID_ARGUMENT', 'give --workspace-id [--group-id], or --global');
      const updated = await ownerCall(o, 'agent.context', { agent: ref, context: context ?? null });
      if (o.json) return printJson(updated);
      printLine(`agent ${updated.name} now works in ${updated.context}`);
    });

  agent
    .command('list')
    .option('--json', 'print as JSON')
    .description('list agents')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const list = await ownerCall(o, 'agent.list', {});
      if (o.json) return printJson(list);
      printTable(['NAME', 'ID', 'AUTH', 'CONTEXT', 'STATUS', 'CREATED'], list.map((a) => [a.name, a.id, a.auth, a.context, a.status, a.createdAt]));
    });

  agent
    .command('describe')
    .argument('<agent>', 'name or id')
    .option('--json', 'print as JSON')
    .description('show an agent and its grants')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const a = await ownerCall(o, 'agent.describe', { agent: ref });
      if (o.json) return printJson(a);
      printFields([
        ['name', a.name],
        ['id', a.id],
        ['auth', a.auth],
        ['status', a.status],
        ['grants', a.grants.map((g) => g.capability).join(', ') || '(none)'],
      ]);
    });

  agent
    .command('revoke')
    .argument('<agent>', 'name or id')
    .option('--json', 'print as JSON')
    .description('revoke an agent: its next request is refused')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const a = await ownerCall(o, 'agent.revoke', { agent: ref });
      if (o.json) return printJson(a);
      printLine(`revoked agent ${a.name}`);
    });

  program
    .command('grant')
    .description('let an agent invoke capabilities (`aivault grant list [AGENT]` lists grants)')
    .argument('<agent>', 'name or id (or "list")')
    .argument('[capabilities...]', 'capability or flow ids, or PROVIDER/*: every capability the provider has now (not ones added later)')
    .option('--expires <when>', 'the grants end after a duration (30m, 1h, 7d) or at an ISO date')
    .option('--rate <rate>', 'rate limit per agent and capability, e.g. 60/min, 10/s')
    .option('--methods <list>', "a subset of each capability's methods, e.g. GET,POST (PROVIDER/*: those of them each has)")
    .option('--approve <when>', 'the owner approves invokes (aivault approvals): each, or the first only')
    .option('--json', 'print {agent, grants, skipped, kept, warnings} as JSON')
    .addHelpText(
      'after',
      `
All the capabilities named get the same terms, and either all are granted or none (one
audit record each). PROVIDER/* is expanded when the grant is made, into one grant per
capability the provider has then: one added later (a custom one, a registry update)
needs its own grant. A pattern keeps a grant the agent already holds as it is; naming
the capability replaces it. A capability that is not ready (its secret not stored yet,
or not serving the agent's workspace or group) is granted with a warning.`,
    )
    .action(async (agentRef: string, capabilities: string[], _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { expires?: string; rate?: string; methods?: string; approve?: string }>();
      if (agentRef === 'list') {
        if (capabilities.length > 1) throw new AivaultError('INVALID_ARGUMENT', 'usage: aivault grant list [AGENT]');
        const grants = await ownerCall(o, 'grant.list', capabilities[0] ? { agent: capabilities[0] } : {});
        if (o.json) return printJson(grants);
        return printTable(['AGENT', 'CAPABILITY', 'METHODS', 'RATE', 'EXPIRES', 'APPROVE'], grants.map((g) => [g.agentId, g.capability, g.methods?.join(',') ?? 'all', rateText(g), g.expiresAt ?? 'never', g.approve ?? 'no']));
      }
      if (capabilities.length === 0) throw new AivaultError('INVALID_ARGUMENT', 'usage: aivault grant AGENT CAPABILITY… [--expires …] [--rate …] [--methods …] [--approve …]');
      const result = await ownerCall(o, 'grant.create', { agent: agentRef, capabilities, ...(o.expires ? { expires: o.expires } : {}), ...(o.rate ? { rate: o.rate } : {}), ...(o.methods ? { methods: o.methods.split(',') } : {}), ...(o.approve ? { approve: o.approve } : {}) });
      if (o.json) return printJson(result);
      const [first] = result.grants;
      const terms = `${first?.expiresAt ? ` until ${first.expiresAt}` : ''}${first?.rate ? ` at ${rateText(first)}` : ''}${first?.approve ? ` (owner approves ${first.approve === 'each' ? 'each invoke' : 'the first invoke'})` : ''}`;
      const granted = result.grants.map((g) => (g.methods ? `${g.capability} (${g.methods.join(',')})` : g.capability));
      printLine(granted.length === 0 ? `granted nothing new to ${result.agent}` : granted.length === 1 ? `granted ${granted[0]} to ${result.agent}${terms}` : `granted ${granted.length} capabilities to ${result.agent}${terms}: ${granted.join(', ')}`);
      if (result.kept.length > 0) note(`already granted, kept as they are (name one to change its terms): ${result.kept.join(', ')}`);
      if (result.skipped.length > 0) note(`not granted (allowing none of ${o.methods}): ${result.skipped.join(', ')}`);
      const patterns = capabilities.filter((c) => c.endsWith('/*'));
      if (patterns.length > 0) note(`${patterns.join(', ')}: the capabilities as they are now; one added later needs its own grant`);
      // One line per reason: a provider without its secret makes all its capabilities not ready.
      const notReady = Map.groupBy(result.warnings, (w) => notReadyText(w.missing, w.outOfScope));
      for (const [why, ws] of notReady) note(`warning: not ready (${why}), so refused to the agent until then: ${ws.map((w) => w.capability).join(', ')}`);
    });

  program
    .command('revoke-grant')
    .description('take capabilities back from an agent')
    .argument('<agent>')
    .argument('<capabilities...>', 'capability or flow ids, or PROVIDER/*: every grant the agent holds for PROVIDER/…, however it was granted')
    .option('--json', 'print {agent, revoked} as JSON')
    .action(async (agentRef: string, capabilities: string[], _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { json?: boolean }>();
      const result = await ownerCall(o, 'grant.revoke', { agent: agentRef, capabilities });
      if (o.json) return printJson(result);
      printLine(result.revoked.length === 1 ? `revoked ${result.revoked[0]} from ${result.agent}` : `revoked ${result.revoked.length} grants from ${result.agent}: ${result.revoked.join(', ')}`);
    });
}
