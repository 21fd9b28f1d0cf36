// `aivault run --agent NAME -- COMMAND …`: runs an unmodified tool as an agent. The child
// gets a fresh derived agent holding NAME's grants on a short lease, which run renews while
// the child lives and revokes when it ends, however it ends (a `kill -9` of run leaves the
// token usable until the lease runs out); the daemon's address; gateway base URLs for the
// SDKs it knows; and an environment without credentials (../child-env.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { builtinRegistry, type Registry } from '../../registry/registry.ts';
import { secretNamesOf } from '../../registry/types.ts';
import type { AgentRecord } from '../../storage/types.ts';
import type { Vault } from '../../vault/vault.ts';
import { ENV_RULE, childEnvironment } from '../child-env.ts';
import { withServices } from '../broker-context.ts';
import { vaultDir, type GlobalOptions } from '../context.ts';
import { daemonAnswers, findDaemon } from '../daemon-record.ts';
import { note } from '../output.ts';

/** The derived agent's lease, in seconds: run renews it every quarter of its length. */
const LEASE = { default: 120, min: 2, max: 3600 };

/** Signals that end run: each is passed on to the command, whose end run then waits for. */
const ENDING_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

const END_RULE = `SIGTERM, SIGINT and SIGHUP to run (and the end of run's parent, as SIGHUP)
are passed on to the command, and run stops renewing the lease; once the
command ends, the derived agent is revoked.`;

/** SDK environment variables that point a provider's official SDK at the gateway. */
const SDK_ENV: Record<string, (gw: string, token: string) => Record<string, string>> = {
  openai: (gw, token) => ({ OPENAI_BASE_URL: `${gw}/v1`, OPENAI_API_KEY: token }),
  anthropic: (gw, token) => ({ ANTHROPIC_BASE_URL: gw, ANTHROPIC_API_KEY: token }),
};

function leaseMs(text: string | undefined): number {
  if (text === undefined) return LEASE.default * 1000;
  const seconds = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= LEASE.min && seconds <= LEASE.max)) throw new AivaultError('INVALID_ARGUMENT', `--lease takes whole seconds from ${LEASE.min} to ${LEASE.max}`);
  return seconds * 1000;
}

/** The providers of the capabilities `agent` holds grants for. */
async function grantedProviders(vault: Vault, registry: Registry, agent: AgentRecord): Promise<Set<string>> {
  const providers = new Set<string>();
  for (const g of await vault.storage.listGrants(agent.id)) {
    const provider = registry.capabilities.get(g.capability)?.provider ?? (await vault.storage.getCapability(g.capability))?.provider;
    if (provider) providers.add(provider);
  }
  return providers;
}

/** Every stored value, kept versions too (a rollback brings one back), to be kept out of the child's environment. */
async function storedValues(vault: Vault): Promise<string[]> {
  const values: string[] = [];
  for (const s of await vault.storage.listSecrets()) {
    for (const v of await vault.storage.listSecretVersions(s.id)) {
      const bytes = await vault.revealSecret(s.id, { version: v.version });
      values.push(bytes.toString('utf8'));
      bytes.fill(0);
    }
  }
  return values;
}

/** What run itself tells the child: its token, the daemon's address, gateway base URLs. */
function ownEnv(token: string, socket: string, url: string | undefined, providers: Set<string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { AIVAULT_AGENT_TOKEN: token, AIVAULT_SOCKET: socket };
  if (!url) return env;
  env.AIVAULT_URL = url;
  for (const provider of providers) {
    Object.assign(env, SDK_ENV[provider]?.(`${url}/gw/${provider}`, token) ?? {});
    env[`AIVAULT_GATEWAY_${provider.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = `${url}/gw/${provider}`;
  }
  return env;
}

/**
 * Where the child reaches the daemon: the socket and URL given (flag, then environment), else
 * the ones the running daemon recorded, else the default socket. Each must answer now: a
 * command started against no daemon would only fail later, further from the cause.
 */
async function daemonAddress(dir: string, flagUrl: string | undefined): Promise<{ socket: string; url: string | undefined }> {
  const given = { socket: process.env.AIVAULT_SOCKET || undefined, url: (flagUrl ?? (process.env.AIVAULT_URL || undefined))?.replace(/\/$/, '') };
  const recorded = await findDaemon(dir);
  const socket = given.socket ?? recorded?.socket ?? join(dir, 'aivault.sock');
  // The recorded URL is the recorded daemon's: it goes with its socket only.
  const url = given.url ?? (recorded && recorded.socket === socket ? recorded.url : undefined);
  const hint = 'start one with `aivault serve` (with --listen 127.0.0.1:8787 for SDK base URLs)';
  if (!(await daemonAnswers({ socket }))) throw new AivaultError('DAEMON_UNAVAILABLE', `no daemon answers at ${socket}${given.socket ? ' (AIVAULT_SOCKET)' : ''}: ${hint}`);
  if (url && !(await daemonAnswers({ url }))) throw new AivaultError('DAEMON_UNAVAILABLE', `no daemon answers at ${url}${given.url ? (flagUrl ? ' (--url)' : ' (AIVAULT_URL)') : ''}: ${hint}`);
  return { socket, url };
}

/** The child's exit status as a shell reports it (128 + N for signal N; 127 when it did not start). */
function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(127));
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description("run a command as an agent, wired to the daemon, with no credential in its environment")
    .requiredOption('--agent <name>', 'the agent whose grants the command gets (through a derived agent, revoked when the command ends)')
    .option('--url <url>', "the daemon's loopback URL, for gateway base URLs (default: AIVAULT_URL, else the running daemon's, from daemon.json in the vault directory)")
    .option('--lease <seconds>', `how long the derived agent's grants last unless renewed (run renews them every quarter of that while the command runs; ${LEASE.min}-${LEASE.max}, default ${LEASE.default})`)
    .argument('<command...>', 'the command and its arguments (after --)')
    .addHelpText('after', `\n${ENV_RULE}\n\n${END_RULE}`)
    .action(async (command: string[], _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { agent: string; url?: string; lease?: string }>();
      const lease = leaseMs(o.lease);
      const { socket, url } = await daemonAddress(vaultDir(o), o.url);
      const registry = await builtinRegistry();
      const secretNames = new Set([...registry.providers.values()].flatMap((p) => secretNamesOf(p)));
      let child: ChildProcess | undefined;
      let ending: NodeJS.Signals | undefined;
      const end = (signal: NodeJS.Signals) => {
        ending ??= signal;
        child?.kill(signal);
      };
      for (const s of ENDING_SIGNALS) process.on(s, end);
      try {
        process.exitCode = await withServices(o, async ({ vault, agents }) => {
          const source = await agents.get(o.agent);
          const until = () => new Date(Date.now() + lease).toISOString();
          const derived = await agents.derive(source, `${source.name}.run-${randomBytes(3).toString('hex')}`.slice(0, 64), until());
          let renewing: Promise<unknown> = Promise.resolve();
          let timer: NodeJS.Timeout | undefined;
          try {
            const providers = await grantedProviders(vault, registry, source);
            const { env, dropped } = childEnvironment(process.env, secretNames, await storedValues(vault));
            if (dropped.length > 0) note(`not passed to the command: ${dropped.join(', ')}`);
            if (!url && providers.size > 0) note('the daemon serves no loopback URL, so the command gets no gateway base URLs (OPENAI_BASE_URL…): start `aivault serve --listen 127.0.0.1:8787`');
            Object.assign(env, ownEnv(derived.token, socket, url, providers));
            if (ending) return 128 + constants.signals[ending];
            const [file, ...args] = command;
            child = spawn(file!, args, { env, stdio: 'inherit' });
            const parent = process.ppid;
            timer = setInterval(() => {
              if (process.ppid !== parent) end('SIGHUP'); // run's parent is gone
              if (ending) return clearInterval(timer); // no renewal once run is ending
              renewing = renewing
                .then(() => agents.renewLease(source, derived.agent, until()))
                .then(
                  (renewed) => renewed || clearInterval(timer),
                  () => note(`could not renew ${derived.agent.name}'s lease; trying again`),
                );
            }, lease / 4);
            return await exited(child);
          } finally {
            clearInterval(timer);
            await renewing;
            await agents.revoke(derived.agent.id).catch((err: unknown) => {
              if (!(err instanceof AivaultError && err.code === 'AGENT_REVOKED')) note(`could not revoke ${derived.agent.name}; its grants lapse within ${lease / 1000} s, or revoke it by hand`);
            });
          }
        });
      } finally {
        for (const s of ENDING_SIGNALS) process.off(s, end);
      }
    });
}
