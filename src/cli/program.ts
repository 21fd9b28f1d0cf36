// The command tree: the commands a run needs registered, each with its help examples attached.

import { Command } from 'commander';
import { VERSION } from '../version.ts';
import { attachExamples } from './examples.ts';

type Register = (program: Command) => void;

/**
 * Each module of commands, the top-level names it registers, in the order help lists them. A
 * run loads only the module of the command it names (its imports are most of start-up); the
 * top-level help, completion and anything unknown load all. A test holds the names to the tree.
 */
export const COMMAND_MODULES: ReadonlyArray<readonly [names: readonly string[], load: () => Promise<Register>]> = [
  [['init'], async () => (await import('./commands/init.ts')).registerInit],
  [['secrets'], async () => (await import('./commands/secrets.ts')).registerSecrets],
  [['registry'], async () => (await import('./commands/registry.ts')).registerRegistry],
  [['credential'], async () => (await import('./commands/credential.ts')).registerCredential],
  [['capability'], async () => (await import('./commands/capability.ts')).registerCapability],
  [['endpoint'], async () => (await import('./commands/endpoint.ts')).registerEndpoint],
  [['flow'], async () => (await import('./commands/flow.ts')).registerFlow],
  [['invoke', 'json', 'markdown'], async () => (await import('./commands/invoke.ts')).registerInvoke],
  [['oauth'], async () => (await import('./commands/oauth.ts')).registerOAuth],
  [['agent', 'grant', 'revoke-grant'], async () => (await import('./commands/agent.ts')).registerAgent],
  [['approvals'], async () => (await import('./commands/approvals.ts')).registerApprovals],
  [['owner'], async () => (await import('./commands/owner.ts')).registerOwner],
  [['audit'], async () => (await import('./commands/audit.ts')).registerAudit],
  [['serve'], async () => (await import('./commands/serve.ts')).registerServe],
  [['setup'], async () => (await import('./commands/setup.ts')).registerSetup],
  [['rotate-master'], async () => (await import('./commands/rotate-master.ts')).registerRotateMaster],
  [['mcp'], async () => (await import('./commands/mcp.ts')).registerMcp],
  [['status', 'explain'], async () => (await import('./commands/status.ts')).registerStatus],
  [['run'], async () => (await import('./commands/run.ts')).registerRun],
  // It writes scripts for the whole tree.
  [['completion'], async () => (await import('./commands/completion.ts')).registerCompletion],
];

/** The modules a run of `argv` needs: the one naming its command, or all. */
function modulesFor(argv: readonly string[] | undefined): typeof COMMAND_MODULES {
  // The first word that is not an option or the value of --dir (the one global option with one).
  const words = argv?.slice(2) ?? [];
  const named = words.find((a, i) => !a.startsWith('-') && words[i - 1] !== '--dir');
  const only = named === undefined || named === 'completion' ? undefined : COMMAND_MODULES.find(([names]) => names.includes(named));
  return only ? [only] : COMMAND_MODULES;
}

/** The command tree, with what `argv` runs (all commands without one). */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command('aivault')
    .description('A secrets vault and credential broker for AI agents: agents invoke capabilities, never hold keys.')
    .version(VERSION)
    .option('--dir <path>', 'vault directory (default: $AIVAULT_DIR or ~/.aivault)')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  const registers = await Promise.all(modulesFor(argv).map(([, load]) => load()));
  for (const register of registers) register(program);
  for (const cmd of program.commands) {
    cmd.exitOverride().configureOutput({ outputError: () => {} });
    for (const sub of cmd.commands) sub.exitOverride().configureOutput({ outputError: () => {} });
  }
  attachExamples(program);
  return program;
}
