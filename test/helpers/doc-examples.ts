// Command examples, taken mechanically from where a person reads them: fenced ```sh and
// ```bash blocks of the README and docs/, and the Examples of every command's --help
// (src/cli/examples.ts). A block that cannot run here (it installs globally, needs root or
// a PostgreSQL server) opts out with a marker on the line before its fence, which names why:
//   <!-- examples: skip (needs root) -->

import { readFileSync } from 'node:fs';

export interface Example {
  /** Where a person reads it: file:line, or `aivault COMMAND --help`. */
  where: string;
  /** The command as written (continuation lines joined as the shell joins them). */
  text: string;
}

export interface DocBlock {
  where: string;
  examples: Example[];
  /** Why the block does not run, when it opted out. */
  skipped?: string;
}

const SKIP = /^<!--\s*examples:\s*skip\s*\(([^)]+)\)\s*-->$/;

/** The logical command lines of a shell block: blank and comment-only lines dropped, `\` continuations kept whole. */
export function commandsOf(block: string, file: string, firstLine: number): Example[] {
  const out: Example[] = [];
  const lines = block.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let text = lines[i]!;
    while (/\\$/.test(text) && i + 1 < lines.length) text += `\n${lines[++i]}`;
    if (text.trim() === '' || text.trim().startsWith('#')) continue;
    out.push({ where: `${file}:${firstLine + start}`, text });
  }
  return out;
}

/** Every ```sh / ```bash block of a markdown file, with its commands or the reason it opted out. */
export function shellBlocks(path: string, name: string): DocBlock[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(sh|bash)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    if (end === -1) throw new Error(`${name}:${i + 1}: a fence that never closes`);
    const skipped = SKIP.exec(lines[i - 1]?.trim() ?? '')?.[1];
    blocks.push({ where: `${name}:${i + 1}`, examples: commandsOf(lines.slice(i + 1, end).join('\n'), name, i + 2), ...(skipped ? { skipped } : {}) });
    i = end;
  }
  return blocks;
}
