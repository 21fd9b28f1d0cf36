// `aivault setup systemd` and `aivault setup agent-access`: the recommended production
// deployment (see docs/operations.md "Production setup"), printed for review or installed.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { GlobalOptions } from '../context.ts';
import { agentAccessSteps, stepsScript, systemdUnit } from '../deployment.ts';
import { note, printJson, printLine } from '../output.ts';

interface SetupOptions extends GlobalOptions {
  daemonUser: string;
  agentUser?: string;
  socketGroup: string;
  vaultDir: string;
  socket: string;
  aivaultBin: string;
  listen?: string;
  install?: boolean;
  unitDir: string;
  dryRun?: boolean;
  json?: boolean;
}

function needRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new AivaultError('INVALID_ARGUMENT', `${what} needs root; run it with sudo, or use --dry-run and run the printed commands yourself`);
}

export function registerSetup(program: Command): void {
  const setup = program.command('setup').description('install the recommended production deployment: the daemon as its own user, agents only on its socket');

  setup
    .command('systemd')
    .description('print (or --install) a hardened systemd unit that runs `aivault serve` as its own user')
    .requiredOption('--daemon-user <user>', 'the user the daemon runs as (owns the vault and its key)')
    .option('--socket-group <group>', 'the group whose members (agent users) may use the socket', 'aivault-agents')
    .option('--vault-dir <dir>', 'the vault directory, readable by the daemon user only', '/var/lib/aivault')
    .option('--socket <path>', 'the socket path', '/run/aivault/aivault.sock')
    .option('--aivault-bin <path>', 'the aivault executable', '/usr/local/bin/aivault')
    .option('--listen <addr>', 'also serve loopback TCP (for the gateway and MCP over HTTP)')
    .option('--install', 'write the unit to --unit-dir and reload systemd (root)')
    .option('--unit-dir <dir>', 'where --install writes aivault.service', '/etc/systemd/system')
    .option('--json', 'print {unit, path} as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<SetupOptions>();
      const unit = systemdUnit({ daemonUser: o.daemonUser, socketGroup: o.socketGroup, vaultDir: o.vaultDir, socketPath: o.socket, aivaultBin: o.aivaultBin, ...(o.listen ? { listen: o.listen } : {}) });
      const unitDir = resolve(o.unitDir);
      const system = unitDir === '/etc/systemd/system';
      const path = join(unitDir, 'aivault.service');
      if (o.install) {
        if (system) needRoot('installing the unit');
        writeFileSync(path, unit);
        // The CLI's umask is 077; systemd wants unit files world-readable (they hold no secret).
        chmodSync(path, 0o644);
        if (system) spawnSync('systemctl', ['daemon-reload'], { stdio: 'ignore' });
        note(`wrote ${path}; next: aivault setup agent-access --agent-user USER, then systemctl enable --now aivault`);
      }
      if (o.json) return printJson({ unit, path, installed: o.install === true });
      if (!o.install) process.stdout.write(unit);
    });

  setup
    .command('agent-access')
    .description("let an agent's OS user reach the daemon's socket and nothing else (users, group, vault directory); --dry-run prints the commands")
    .requiredOption('--agent-user <user>', "the agent's OS user")
    .option('--daemon-user <user>', 'the daemon user', 'aivault')
    .option('--socket-group <group>', 'the socket group', 'aivault-agents')
    .option('--vault-dir <dir>', 'the vault directory', '/var/lib/aivault')
    .option('--dry-run', 'print the commands (a shell script) instead of running them')
    .option('--json', 'print the steps as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<SetupOptions>();
      const steps = agentAccessSteps({ agentUser: o.agentUser!, socketGroup: o.socketGroup, daemonUser: o.daemonUser, vaultDir: o.vaultDir });
      if (o.dryRun) {
        if (o.json) return printJson({ dryRun: true, steps });
        process.stdout.write(stepsScript(steps));
        return;
      }
      needRoot('setting up users and groups');
      const done: string[] = [];
      for (const step of steps) {
        if (step.unless && spawnSync(step.unless[0]!, step.unless.slice(1), { stdio: 'ignore' }).status === 0) continue;
        try {
          execFileSync(step.argv[0]!, step.argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
        } catch {
          throw new AivaultError('INTERNAL_ERROR', `step failed: ${step.describe} (${step.argv[0]}); the steps before it are done: ${done.join('; ') || 'none'}`);
        }
        done.push(step.describe);
      }
      if (o.json) return printJson({ dryRun: false, done });
      for (const d of done) printLine(`done: ${d}`);
      note(`${o.agentUser} can now use the socket; give it an agent token (aivault agent create NAME, as ${o.daemonUser}) and AIVAULT_SOCKET`);
    });
}
