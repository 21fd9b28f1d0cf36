// `aivault secrets import`: many secrets at once, from --entry NAME=VALUE or a dotenv file
// (or stdin). Everything is checked before anything is written: names, empty values,
// duplicates, and existing secrets (rotated only with --overwrite). Values are never printed.

import { readFile } from 'node:fs/promises';
import { parseEnv } from 'node:util';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { assertScope, assertSecretName } from '../../vault/names.ts';
import { MAX_SECRET_BYTES, assertProtectable } from '../../vault/vault.ts';
import { collect, splitPair } from '../collect.ts';
import { withVault, type GlobalOptions } from '../context.ts';
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

async function entriesOf(o: ImportOptions): Promise<Array<[string, string]>> {
  const entries: Array<[string, string]> = [];
  for (const raw of o.entry ?? []) {
    let pair: [string, string];
    try {
      pair = splitPair(raw);
    } catch {
      throw new AivaultError('INVALID_ARGUMENT', '--entry must look like NAME=VALUE');
    }
    entries.push(pair);
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
    for (const [name, value] of Object.entries(parseEnv(text))) entries.push([name, value ?? '']);
  }
  if (entries.length === 0) throw new AivaultError('INVALID_ARGUMENT', 'nothing to import: give --entry NAME=VALUE or --file .env');
  return entries;
}

export function registerImport(secrets: Command): void {
  secrets
    .command('import')
    .description('store many secrets at once from --entry NAME=VALUE or a dotenv file; all are checked before any is written')
    .option('--entry <NAME=VALUE>', 'one secret (repeatable; visible in the process list)', collect)
    .option('--file <path>', 'a dotenv file (NAME=value lines, # comments, quotes, export prefixes); - for stdin')
    .option('--scope <scope>', 'scope for every imported secret', 'global')
    .option('--overwrite', 'rotate secrets that already exist (otherwise refused, and nothing is written)')
    .option('--allow-short', 'store values under 8 bytes, which aivault cannot scrub from responses (an upstream that echoes it hands it to the agent)')
    .option('--json', 'print [{name, scope, action, ref}] as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<ImportOptions>();
      assertScope(o.scope);
      const entries = await entriesOf(o);
      const seen = new Set<string>();
      for (const [name, value] of entries) {
        assertSecretName(name);
        if (seen.has(name)) throw new AivaultError('INVALID_ARGUMENT', `${name} is given twice`);
        seen.add(name);
        if (value.length === 0) throw new AivaultError('SECRET_EMPTY', `${name} has an empty value; nothing imported`);
        // Checked for all before any is written, so a refusal imports nothing.
        if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES) throw new AivaultError('SECRET_TOO_LARGE', `${name}: a secret value may hold at most ${MAX_SECRET_BYTES} bytes; nothing imported`);
        assertProtectable(Buffer.from(value, 'utf8'), o.allowShort === true, `${name} (nothing imported)`);
      }
      const results = await withVault(o, async (vault) => {
        const existing = new Set((await vault.listSecrets(o.scope)).map((s) => s.name));
        const clashes = entries.filter(([name]) => existing.has(name)).map(([name]) => name);
        if (clashes.length > 0 && !o.overwrite) throw new AivaultError('SECRET_ALREADY_EXISTS', `already stored in ${o.scope}: ${clashes.join(', ')}; give --overwrite to rotate them; nothing imported`);
        const out: Array<{ name: string; scope: string; action: 'created' | 'rotated'; ref: string }> = [];
        for (const [name, value] of entries) {
          const bytes = Buffer.from(value, 'utf8');
          try {
            const allow = o.allowShort ? { allowShort: true } : {};
            const info = existing.has(name) ? await vault.rotateSecret(name, bytes, o.scope, allow) : await vault.createSecret({ name, value: bytes, scope: o.scope, ...allow });
            out.push({ name, scope: o.scope, action: existing.has(name) ? 'rotated' : 'created', ref: info.ref });
          } finally {
            bytes.fill(0);
          }
        }
        return out;
      });
      if (o.json) return printJson(results);
      printTable(['NAME', 'SCOPE', 'ACTION', 'REF'], results.map((r) => [r.name, r.scope, r.action, r.ref]));
    });
}
