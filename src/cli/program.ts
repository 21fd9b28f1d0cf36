// The command tree: every command registered, each with its help examples attached.

import { Command } from 'commander';
import { registerAgent } from './commands/agent.ts';
import { registerApprovals } from './commands/approvals.ts';
import { registerAudit } from './commands/audit.ts';
import { registerCapability } from './commands/capability.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerCredential } from './commands/credential.ts';
import { registerEndpoint } from './commands/endpoint.ts';
import { registerFlow } from './commands/flow.ts';
import { registerInit } from './commands/init.ts';
import { registerInvoke } from './commands/invoke.ts';
import { registerMcp } from './commands/mcp.ts';
import { registerOAuth } from './commands/oauth.ts';
import { registerOwner } from './commands/owner.ts';
import { registerRegistry } from './commands/registry.ts';
import { registerSecrets } from './commands/secrets.ts';
import { registerRun } from './commands/run.ts';
import { registerServe } from './commands/serve.ts';
import { registerSetup } from './commands/setup.ts';
import { registerRotateMaster } from './commands/rotate-master.ts';
import { registerStatus } from './commands/status.ts';
import { attachExamples } from './examples.ts';

export function buildProgram(): Command {
  const program = new Command('aivault')
    .description('A secrets vault and credential broker for AI agents: agents invoke capabilities, never hold keys.')
    .version('0.1.0')
    .option('--dir <path>', 'vault directory (default: $AIVAULT_DIR or ~/.aivault)')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  registerInit(program);
  registerSecrets(program);
  registerRegistry(program);
  registerCredential(program);
  registerCapability(program);
  registerEndpoint(program);
  registerFlow(program);
  registerInvoke(program);
  registerOAuth(program);
  registerAgent(program);
  registerApprovals(program);
  registerOwner(program);
  registerAudit(program);
  registerServe(program);
  registerSetup(program);
  registerRotateMaster(program);
  registerMcp(program);
  registerStatus(program);
  registerRun(program);
  registerCompletion(program);
  for (const cmd of program.commands) {
    cmd.exitOverride().configureOutput({ outputError: () => {} });
    for (const sub of cmd.commands) sub.exitOverride().configureOutput({ outputError: () => {} });
  }
  attachExamples(program);
  return program;
}
