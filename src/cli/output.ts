// How the CLI prints: JSON on request, aligned tables for people, and errors as
// `error CODE: message` (or `{"error":{code,message}}` with --json) on stderr.

import { AivaultError } from '../errors.ts';
import { HINTS } from './explain.ts';
import { messageWithFlags } from './flags.ts';

/**
 * Control characters (C0, DEL, C1), format characters (bidi overrides and isolates, zero
 * widths, soft hyphen, tag characters), line and paragraph separators, and every other
 * default-ignorable code point (fillers, variation selectors), escaped. Text shown to a
 * person can come from an agent or an upstream (a capability id, a path, a reason): raw, a
 * line break forges an audit line, an escape sequence drives the owner's terminal, a bidi
 * override reorders what is read, an invisible character hides words a model still reads.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.codePointAt(0)!;
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
    return code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A document for a program or a model (rendered JSON or markdown, a response body): written as it is. */
export function printDocument(text: string): void {
  process.stdout.write(text + '\n');
}

/** One line for a person: whatever it quotes cannot break it, colour it or reorder it. */
export function printLine(line = ''): void {
  process.stdout.write(printable(line) + '\n');
}

/** Human notes go to stderr so stdout stays the command's result. */
export function note(line: string): void {
  process.stderr.write(printable(line) + '\n');
}

export function printTable(headers: readonly string[], shown: readonly (readonly string[])[]): void {
  const rows = shown.map((r) => r.map(printable));
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

/** An error as the CLI's user reads it: fields named as the flags that set them. */
export function printError(err: AivaultError, json: boolean): void {
  const message = messageWithFlags(err);
  if (json) process.stderr.write(JSON.stringify({ error: { code: err.code, message } }) + '\n');
  else process.stderr.write(`${paint(`error ${err.code}`, 31)}: ${printable(message)}\n${HINTS[err.code] ? `  hint: aivault explain ${err.code}\n` : ''}`);
}
