// `aivault approvals`: the owner's queue of invokes waiting for approval (grants made
// with --approve each|first). Deciding is audited with who decided.

import type { Command } from 'commander';
import type { ApprovalRecord } from '../../storage/types.ts';
import type { GlobalOptions } from '../context.ts';
import { ownerCall } from '../daemon-client.ts';
import { printJson, printLine } from '../output.ts';

interface ApprovalsOptions extends GlobalOptions {
  all?: boolean;
  json?: boolean;
}

/** One approval as the owner decides on it: who asks, and exactly what would be sent. */
function printApproval(a: ApprovalRecord, all: boolean): void {
  const d = a.details;
  printLine(`${a.id}  ${a.status}  ${a.capability}  agent ${d ? `${d.agentName} (${a.agentId})` : a.agentId}  ${all ? `decided by ${a.decidedBy ?? '-'}` : `expires ${a.expiresAt}`}`);
  if (!d) return printLine(`  ${a.method} ${a.host}${a.path}`);
  printLine(`  ${a.method} ${JSON.stringify(d.url).slice(1, -1)}`);
  for (const [k, v] of d.headers) printLine(`  ${k}: ${JSON.stringify(v).slice(1, -1)}`);
  if (d.body) {
    printLine(`  body: ${d.body.length} bytes, sha256 ${d.body.sha256}${d.body.truncated ? ' (start shown)' : ''}${d.body.encoding === 'base64' ? ', base64' : ''}`);
    // Escaped, so the agent's text cannot draw lines of its own here.
    printLine(`    ${JSON.stringify(d.body.preview).slice(1, -1)}`);
  }
}

function printList(list: ApprovalRecord[], o: ApprovalsOptions): void {
  if (o.json) return printJson(list);
  if (list.length === 0) return printLine(o.all ? 'no approvals' : 'no pending approvals');
  for (const a of list) printApproval(a, o.all === true);
}

async function listAction(_o: unknown, cmd: Command): Promise<void> {
  const o = cmd.optsWithGlobals<ApprovalsOptions>();
  printList(await ownerCall(o, 'approval.list', { all: o.all === true }), o);
}

export function registerApprovals(program: Command): void {
  const approvals = program
    .command('approvals')
    .description('invokes waiting for your approval (grants made with --approve): list, approve, deny')
    .option('--all', 'also decided and expired ones')
    .option('--json', 'print as JSON')
    .action(listAction);

  approvals
    .command('list')
    .description('list pending approvals (--all: every one)')
    .option('--all', 'also decided and expired ones')
    .option('--json', 'print as JSON')
    .action(listAction);

  for (const decision of ['approve', 'deny'] as const) {
    approvals
      .command(decision)
      .description(decision === 'approve' ? 'let a waiting invoke go ahead' : 'refuse a waiting invoke (the agent gets APPROVAL_DENIED)')
      .argument('<id>', 'approval id (apr_…)')
      .option('--json', 'print as JSON')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const o = cmd.optsWithGlobals<ApprovalsOptions>();
        const decided = await ownerCall(o, `approval.${decision}`, { id });
        if (o.json) return printJson(decided);
        printLine(`${decided.status} ${decided.id}: ${decided.method} ${decided.host}${decided.path} (${decided.capability}) for ${decided.agentId}`);
      });
  }
}
