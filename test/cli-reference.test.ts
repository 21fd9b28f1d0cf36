// docs/cli.md is exactly what scripts/cli-reference.ts renders from the command tree, so the
// reference cannot drift from the CLI: a new command or option fails this until it is regenerated.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { commandPath } from '../src/cli/examples.ts';
import { buildProgram } from '../src/cli/program.ts';
import { CLI_DOC, TOP_HELP_FILE, renderCliReference, renderTopHelp } from '../scripts/cli-reference.ts';
import type { Command } from 'commander';

describe('docs/cli.md', () => {
  const doc = readFileSync(CLI_DOC, 'utf8');

  it('has a section for every command of the tree', async () => {
    const walk = (c: Command): string[] => c.commands.flatMap((s) => [`aivault ${commandPath(s)}`, ...walk(s)]);
    assert.deepEqual([...doc.matchAll(/^## (aivault .+)$/gm)].map((m) => m[1]), walk(await buildProgram()));
  });

  it('is what the command tree renders (run `node scripts/cli-reference.ts` after changing a command)', async () => {
    assert.equal(doc, await renderCliReference());
  });

  it('aivault --help, printed without the tree, is what the tree renders', async () => {
    assert.equal(readFileSync(TOP_HELP_FILE, 'utf8'), await renderTopHelp());
  });
});
