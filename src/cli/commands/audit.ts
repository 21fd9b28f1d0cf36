// `aivault audit …`: read, verify and export the hash-chained audit log.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { readFileSync } from 'node:fs';
import type { KeptHead } from '../../audit/chain.ts';
import type { AuditRecord } from '../../storage/types.ts';
import type { GlobalOptions } from '../context.ts';
import { ownerCall } from '../daemon-client.ts';
import { printJson, printLine, printTable } from '../output.ts';

interface ListOptions extends GlobalOptions {
  capability?: string;
  since?: string;
  limit?: string;
}

/** `--since` takes an ISO date or a duration back from now (30m, 12h, 7d). */
export function parseSince(value: string): string {
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(Date.now() - Number(rel[1]) * unit).toISOString();
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new AivaultError('INVALID_ARGUMENT', '--since takes an ISO date or a duration like 30m, 12h, 7d');
  return new Date(t).toISOString();
}

/** A head kept with `audit head`: its shape here, its MAC when the vault checks it. */
function readKeptHead(path: string): KeptHead {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new AivaultError('INVALID_ARGUMENT', `${path} does not hold a head printed by \`aivault audit head\` (not readable JSON)`);
  }
  const h = parsed as Partial<KeptHead> | null;
  if (!h || !Number.isSafeInteger(h.seq) || typeof h.hash !== 'string' || typeof h.at !== 'string' || typeof h.mac !== 'string') {
    throw new AivaultError('INVALID_ARGUMENT', `${path} does not hold a head printed by \`aivault audit head\` (seq, hash, at, mac)`);
  }
  return { seq: h.seq!, hash: h.hash, at: h.at, mac: h.mac };
}

function row(r: AuditRecord): string[] {
  const o = r.outcome;
  const result = r.decision === 'deny' ? '' : o === null ? 'pending' : o.error ?? (o.status !== undefined ? String(o.status) : 'ok');
  return [String(r.seq), r.at, r.actor, r.action, r.capability ?? r.target ?? '', r.method ?? '', r.host ?? '', r.path ?? '', r.decision, r.reason ?? '', result];
}

/** The log's records in order, a page (the most one answer holds) at a time, up to `limit`. */
async function* auditPages(o: GlobalOptions, filter: { capability?: string; since?: string }, limit = Infinity) {
  const { AUDIT_PAGE } = await import('../../owner/audit-ops.ts');
  for (let after = 0, left = limit; left > 0; ) {
    const want = Math.min(left, AUDIT_PAGE);
    const page = await ownerCall(o, 'audit.list', { ...filter, afterSeq: after, limit: want });
    if (page.length > 0) yield page;
    if (page.length < want) return;
    after = page.at(-1)!.seq;
    left -= page.length;
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  audit
    .command('list')
    .description('list audit records')
    .option('--capability <id>', 'only this capability')
    .option('--since <when>', 'only records since an ISO date or a duration (30m, 12h, 7d)')
    .option('--limit <n>', 'at most this many records')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<ListOptions>();
      const limit = o.limit === undefined ? undefined : Number(o.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit <= 0)) throw new AivaultError('INVALID_ARGUMENT', '--limit takes a positive integer');
      const records = [];
      for await (const page of auditPages(o, { ...(o.capability ? { capability: o.capability } : {}), ...(o.since ? { since: parseSince(o.since) } : {}) }, limit)) records.push(...page);
      if (o.json) return printJson(records);
      printTable(['SEQ', 'AT', 'ACTOR', 'ACTION', 'CAPABILITY/TARGET', 'METHOD', 'HOST', 'PATH', 'DECISION', 'REASON', 'RESULT'], records.map(row));
    });

  audit
    .command('verify')
    .description("check the whole chain, its head and its anchor in the vault's storage; exit 0 with the record count, or say what is broken")
    .option('--against <file>', 'also check that the chain still holds a head kept with `aivault audit head`')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { against?: string }>();
      const args = o.against ? { against: readKeptHead(o.against) } : {};
      const result = await ownerCall(o, 'audit.verify', args);
      if (o.json) printJson(result);
      if (!result.ok) throw new AivaultError('AUDIT_CHAIN_BROKEN', `the audit chain is broken${result.brokenAt === undefined ? '' : ` at record ${result.brokenAt}`}: ${result.problem}`);
      if (!o.json) printLine(`ok: ${result.count} records, chain intact${o.against ? `, holds the kept head (record ${args.against!.seq})` : ''}`);
    });

  audit
    .command('head')
    .description('print the chain head, MAC\'d under the vault key: keep it off this machine, and check it later with `audit verify --against`')
    .option('--json', 'print as JSON (what it always prints)')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      printJson(await ownerCall(o, 'audit.head', {}));
    });

  audit
    .command('export')
    .description('write every record, with its hashes, one JSON object per line')
    .option('--format <format>', 'jsonl (the only format)', 'jsonl')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { format: string }>();
      if (o.format !== 'jsonl') throw new AivaultError('INVALID_ARGUMENT', '--format supports jsonl');
      for await (const page of auditPages(o, {})) for (const r of page) process.stdout.write(JSON.stringify(r) + '\n');
    });
}
