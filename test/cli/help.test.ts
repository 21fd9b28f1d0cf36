// Every command's --help carries examples, and every example uses only options that
// command really has (so an example cannot rot silently when a flag is renamed).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { EXAMPLES, commandPath } from '../../src/cli/examples.ts';
import { COMMAND_MODULES, buildProgram } from '../../src/cli/program.ts';
import { VERSION } from '../../src/version.ts';
import { runCli } from '../helpers/cli.ts';

function commands(root: Command): Command[] {
  return root.commands.flatMap((c) => [c, ...commands(c)]);
}

const program = await buildProgram();

describe('help examples', () => {
  const all = commands(program);

  it('every command has examples, and no example names a command that does not exist', () => {
    const paths = new Set(all.map(commandPath));
    assert.deepEqual(all.map(commandPath).filter((p) => !EXAMPLES[p]?.length), []);
    assert.deepEqual(Object.keys(EXAMPLES).filter((p) => !paths.has(p)), []);
  });

  it("every example runs its own command, with options that command accepts", () => {
    const problems: string[] = [];
    for (const cmd of all) {
      const path = commandPath(cmd);
      const known = new Set([...cmd.options, ...program.options].flatMap((o) => [o.long, o.short]).filter(Boolean));
      for (const example of EXAMPLES[path] ?? []) {
        // The command itself, or one of its subcommands (a group's examples show those).
        const at = example.indexOf(`aivault ${path}`);
        if (at === -1) {
          problems.push(`${path}: "${example}" does not run aivault ${path}`);
          continue;
        }
        const words = example.slice(at + `aivault ${path}`.length).split(/\s+/).filter(Boolean);
        const sub = cmd.commands.find((c) => c.name() === words[0]);
        const target = sub ?? cmd;
        const accepted = new Set([...known, ...target.options.flatMap((o) => [o.long, o.short])]);
        for (const w of words) {
          if (w === '|' || w === '>' || w === '--') break;
          const flag = w.split('=')[0]!;
          if (flag.startsWith('-') && flag !== '-' && !accepted.has(flag)) problems.push(`${path}: "${example}" uses ${flag}, which ${commandPath(target)} does not accept`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('every command that answers accepts --json (only long-running or shell-output ones do not)', () => {
    // serve/mcp/run run until stopped; completion prints a script; audit export has --format;
    // json always prints JSON, markdown is markdown by design.
    const exempt = new Set(['serve', 'mcp', 'run', 'completion', 'audit export', 'json', 'markdown']);
    const groups = all.filter((c) => c.commands.length > 0 && c.name() !== 'approvals').map(commandPath);
    const missing = all.map((c) => [commandPath(c), c] as const).filter(([p, c]) => !exempt.has(p) && !groups.includes(p) && !c.options.some((o) => o.long === '--json'));
    assert.deepEqual(missing.map(([p]) => p), []);
  });

  it('--help prints them', async () => {
    const r = await runCli(['grant', '--help'], {});
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n {2}aivault grant my-bot openai\/chat-completions openai\/embeddings\n/);
    assert.match(r.stdout, /--approve <when>/);
  });
});

describe('loading only the command a run names', () => {
  it("each module registers exactly the top-level names the table gives it, and together they are the tree's", async () => {
    for (const [names, load] of COMMAND_MODULES) {
      const alone = new Command('aivault');
      (await load())(alone);
      assert.deepEqual(alone.commands.map((c) => c.name()), [...names]);
    }
    assert.deepEqual(program.commands.map((c) => c.name()), COMMAND_MODULES.flatMap(([names]) => names));
  });

  it('a run registers its command alone; the top-level help, completion and an unknown word get the whole tree', async () => {
    const top = async (...args: string[]) => (await buildProgram(['node', 'aivault', ...args])).commands.map((c) => c.name());
    assert.deepEqual(await top('grant', 'bot', 'openai/*'), ['agent', 'grant', 'revoke-grant']);
    assert.deepEqual(await top('--dir', 'secrets', 'invoke', 'x'), ['invoke', 'json', 'markdown']);
    assert.deepEqual(await top('secrets', '--help'), ['secrets']);
    for (const args of [[], ['--help'], ['completion', 'bash'], ['nosuch']]) assert.equal((await top(...args)).length, program.commands.length, args.join(' '));
  });

  it('--version is the package version', () => {
    assert.equal(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version, VERSION);
  });
});

