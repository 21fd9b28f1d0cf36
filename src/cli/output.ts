// How the CLI prints: JSON on request, aligned tables for people, and errors as
// `error CODE: message` (or `{"error":{code,message}}` with --json) on stderr.

import { AivaultError } from '../errors.ts';
import { HINTS } from './explain.ts';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printLine(line = ''): void {
  process.stdout.write(line + '\n');
}

/** Human notes go to stderr so stdout stays the command's result. */
export function note(line: string): void {
  process.stderr.write(line + '\n');
}

export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  printLine(format(headers));
  for (const row of rows) printLine(format(row));
}

export function printFields(fields: readonly (readonly [string, string])[]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) printLine(`${(k + ':').padEnd(width + 1)} ${v}`);
}

/** ANSI colour on a terminal only, and never with NO_COLOR set. */
function paint(text: string, colour: number): string {
  return process.stderr.isTTY && process.env.NO_COLOR === undefined ? `\u001b[${colour}m${text}\u001b[0m` : text;
}

export function printError(err: AivaultError, json: boolean): void {
  if (json) process.stderr.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  else process.stderr.write(`${paint(`error ${err.code}`, 31)}: ${err.message}\n${HINTS[err.code] ? `  hint: aivault explain ${err.code}\n` : ''}`);
}
