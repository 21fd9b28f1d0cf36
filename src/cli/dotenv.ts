// The dotenv rules `secrets import --file` follows: those of the `dotenv` npm package where
// the tools that read .env files agree, and a refusal, naming the line, where they do not
// (a value must never be cut short or carry a stray quote without the owner knowing).
// docs/concepts.md "Importing a dotenv file" lists the rules; test/cli/dotenv.test.ts checks them
// against the dotenv package's own test cases.

import { AivaultError } from '../errors.ts';

export interface DotenvEntry {
  name: string;
  value: string;
  /** 1-based line where the entry starts. */
  line: number;
}

const ASSIGNMENT = /^[ \t]*(?:export[ \t]+)?([^\s=#]+)[ \t]*=[ \t]*(.*)$/;
const QUOTES = new Set(["'", '"', '`']);
/**
 * A line that starts a new entry: inside a quoted value it means the quote was never closed.
 * (Not a base64 line of a PEM key, whose only `=` are padding at its end.)
 */
const LOOKS_LIKE_ENTRY = /^[ \t]*(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_]*[ \t]*=(?!=*[ \t]*$)/;

function refuse(line: number, why: string): never {
  throw new AivaultError('INVALID_ARGUMENT', `line ${line}: ${why}; nothing imported`);
}

/** What may follow a value on its line: blanks, then an optional `# comment`. */
function assertTail(tail: string, line: number, name: string): void {
  if (!/^(?:[ \t]+#.*|[ \t]*)$/.test(tail)) refuse(line, `${name}: text after the closing quote (quote the whole value)`);
}

/** A double-quoted value: `\n` and `\r` stand for line breaks (as in dotenv); any other backslash is ambiguous. */
function unescapeDouble(raw: string, line: number, name: string): string {
  return raw.replace(/\\(.?)/gs, (_m, c: string) => {
    if (c === 'n') return '\n';
    if (c === 'r') return '\r';
    return refuse(line, `${name}: a backslash other than \\n or \\r inside double quotes (tools read it differently; use single quotes for a literal backslash)`);
  });
}

const OTHER_BLANKS = /[\v\f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;

export function parseDotenv(text: string): DotenvEntry[] {
  const lines = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n').split('\n');
  const entries: DotenvEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const source = lines[i]!;
    // dotenv's own pattern takes any \s as a blank (before a quote, around `=`); others take
    // only spaces and tabs: a value must not depend on which tool reads it.
    if (OTHER_BLANKS.test(source)) refuse(line, 'a blank other than space or tab (vertical tab, form feed, no-break or other Unicode space): tools read it differently');
    if (/^[ \t]*(?:#.*)?$/.test(source)) continue;
    const m = ASSIGNMENT.exec(source);
    if (!m) refuse(line, 'not NAME=value (nor a # comment)');
    const name = m[1]!;
    const rest = m[2]!;
    const quote = rest[0] ?? '';
    if (!QUOTES.has(quote)) {
      // Unquoted: a `#` after a blank starts a comment everywhere; glued to the value,
      // dotenv cuts the value there and others keep it, so it is refused.
      const hash = rest.indexOf('#');
      if (hash === 0 && !/[ \t]$/.test(source.slice(0, source.length - rest.length))) refuse(line, `${name}: an unquoted value starting with # (quote it, or leave a blank before a comment)`);
      if (hash > 0 && !/[ \t]/.test(rest[hash - 1]!)) refuse(line, `${name}: an unquoted # inside the value (dotenv reads a comment from there, other tools keep it); quote the value`);
      entries.push({ name, value: (hash >= 0 ? rest.slice(0, hash) : rest).trim(), line });
      continue;
    }
    // Quoted: up to the same quote, over several lines if need be.
    let body = rest.slice(1);
    let end = quote === '"' ? body.search(/(?<!\\)"/) : body.indexOf(quote);
    let last = i;
    while (end < 0) {
      last++;
      if (last >= lines.length || LOOKS_LIKE_ENTRY.test(lines[last]!)) refuse(line, `${name}: the ${quote} quote opened here is never closed`);
      body += `\n${lines[last]!}`;
      end = quote === '"' ? body.search(/(?<!\\)"/) : body.indexOf(quote);
    }
    assertTail(body.slice(end + 1), last + 1, name);
    const raw = body.slice(0, end);
    // dotenv does not end a single- or back-quoted value at a quote after a backslash.
    if (quote !== '"' && raw.endsWith('\\')) refuse(line, `${name}: a backslash before the closing ${quote} (dotenv reads an escaped quote and goes on)`);
    entries.push({ name, value: quote === '"' ? unescapeDouble(raw, line, name) : raw, line });
    i = last;
  }
  return entries;
}
