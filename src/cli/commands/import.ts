// `aivault secrets import`: many secrets at once, from --entry NAME=VALUE or a dotenv file
// (or stdin). Everything is checked before anything is written (names, duplicates, values,
// existing secrets: rotated only with --overwrite), then all are written in one transaction.
// A refusal names the line (or the --entry). Values are never printed.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { assertScope, assertSecretName } from '../../vault/names.ts';
import { assertStorableValue } from '../../vault/values.ts';
import { collect, splitPair } from '../collect.ts';
import type { GlobalOptions } from '../context.ts';
import { ownerCall } from '../daemon-client.ts';
import { parseDotenv } from '../dotenv.ts';
import { readStdin } from '../input.ts';
import { note, printJson, printTable } from '../output.ts';

const MAX_DOTENV_BYTES = 4 * 1024 * 1024;

interface ImportOptions extends GlobalOptions {
  entry?: string[];
  file?: string;
  scope: string;
  overwrite?: boolean;
  allowShort?: boolean;
  json?: boolean;
}

interface Entry {
  name: string;
  value: string;
  /** Where it was given, for refusals: `line 3` or `--entry 2`. */
  where: string;
}

async function entriesOf(o: ImportOptions): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (const [i, raw] of (o.entry ?? []).entries()) {
    let pair: [string, string];
    try {
      pair = splitPair(raw);
    } catch {
      throw new AivaultError('INVALID_ARGUMENT', `--entry ${i + 1} must look like NAME=VALUE`);
    }
    entries.push({ name: pair[0], value: pair[1], where: `--entry ${i + 1}` });
  }
  if (o.entry?.length && !o.json) note('note: --entry values are visible in the process list and shell history; prefer --file (or --file - for stdin)');
  if (o.file !== undefined) {
    let text: string;
    try {
      text = o.file === '-' ? (await readStdin(MAX_DOTENV_BYTES)).toString('utf8') : await readFile(o.file, 'utf8');
    } catch (err) {
      if (err instanceof AivaultError) throw err;
      throw new AivaultError('INVALID_ARGUMENT', `cannot read --file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    for (const e of parseDotenv(text)) entries.push({ name: e.name, value: e.value, where: `line ${e.line}` });
  }
  if (entries.length === 0) throw new AivaultError('INVALID_ARGUMENT', 'nothing to import: give --entry NAME=VALUE or --file .env');
  return entries;
}

/** Every entry against the rules the vault applies, so a refusal can say where the entry is. */
function check(entries: readonly Entry[], allowShort: boolean): void {
  const first = new Map<string, string>();
  for (const e of entries) {
    try {
      assertSecretName(e.name);
      const earlier = first.get(e.name);
      if (earlier) throw new AivaultError('INVALID_ARGUMENT', `${e.name} is given twice (first at ${earlier})`);
      first.set(e.name, e.where);
      assertStorableValue(Buffer.from(e.value, 'utf8'), allowShort, e.name);
    } catch (err) {
      if (err instanceof AivaultError) throw new AivaultError(err.code, `${e.where}: ${err.message}; nothing imported`, err.field !== undefined ? { field: err.field } : undefined);
      throw err;
    }
  }
}

export function registerImport(secrets: Command): void {
  secrets
    .command('import')
    .description('store many secrets at once from --entry NAME=VALUE or a dotenv file; all are checked, then all written in one transaction')
    .option('--entry <NAME=VALUE>', 'one secret (repeatable; visible in the process list)', collect)
    .option('--file <path>', 'a dotenv file (rules: docs/concepts.md, "Importing a dotenv file"); - for stdin')
    .option('--scope <scope>', 'scope for every imported secret', 'global')
    .option('--overwrite', 'rotate secrets that already exist (otherwise refused, and nothing is written)')
    .option('--allow-short', 'store values under 8 bytes, which aivault cannot scrub from responses (an upstream that echoes it hands it to the agent)')
    .option('--json', 'print [{name, scope, action, ref}] as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<ImportOptions>();
      assertScope(o.scope);
      const entries = await entriesOf(o);
      check(entries, o.allowShort === true);
      const results = await ownerCall(o, 'secrets.import', { entries: entries.map((e) => ({ name: e.name, value: e.value })), scope: o.scope, overwrite: o.overwrite === true, allowShort: o.allowShort === true });
      if (o.json) return printJson(results);
      printTable(['NAME', 'SCOPE', 'ACTION', 'REF'], results.map((r) => [r.name, r.scope, r.action, r.ref]));
    });
}
