// `aivault run --agent NAME -- COMMAND …`: runs an unmodified tool as an agent. The child
// gets a fresh, short-lived agent token (a derived agent with NAME's grants, revoked when
// the child exits), the daemon's address, and gateway base URLs for the SDKs it knows;
// and none of the owner's key material or any stored secret value in its environment.

import { spawn } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { Agents } from '../../policy/agents.ts';
import { builtinRegistry } from '../../registry/registry.ts';
import { secretNamesOf } from '../../registry/types.ts';
import { withVault, vaultDir, type GlobalOptions } from '../context.ts';
import { note } from '../output.ts';

const OWNER_ENV = ['AIVAULT_PASSPHRASE', 'AIVAULT_MASTER_KEY', 'AIVAULT_KEY_FILE', 'AIVAULT_OWNER_KEY', 'AIVAULT_OWNER_ID', 'AIVAULT_AGENT_TOKEN'];

/** SDK environment variables that point a provider's official SDK at the gateway. */
const SDK_ENV: Record<string, (gw: string, token: string) => Record<string, string>> = {
  openai: (gw, token) => ({ OPENAI_BASE_URL: `${gw}/v1`, OPENAI_API_KEY: token }),
  anthropic: (gw, token) => ({ ANTHROPIC_BASE_URL: gw, ANTHROPIC_API_KEY: token }),
};

export function registerRun(program: Command): void {
  program
    .command('run')
    .description("run a command as an agent, wired to the daemon, with no secret in its environment")
    .requiredOption('--agent <name>', 'the agent whose grants the command gets (through a short-lived derived token)')
    .option('--url <url>', "the daemon's loopback URL, for gateway base URLs (default: AIVAULT_URL)")
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (command: string[], _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { agent: string; url?: string }>();
      const url = (o.url ?? process.env.AIVAULT_URL)?.replace(/\/$/, '');
      const registry = await builtinRegistry();
      const prepared = await withVault(o, async (vault) => {
        const agents = new Agents(vault);
        const source = await agents.get(o.agent);
        if (source.status !== 'active') throw new AivaultError('AGENT_REVOKED', `${source.name} is revoked`);
        const derived = await agents.create(`${source.name}.run-${randomBytes(3).toString('hex')}`.slice(0, 64));
        await agents.copyGrants(source, derived.agent);
        const providers = new Set<string>();
        for (const g of await vault.storage.listGrants(source.id)) {
          const provider = registry.capabilities.get(g.capability)?.provider ?? (await vault.storage.getCapability(g.capability))?.provider;
          if (provider) providers.add(provider);
        }
        // Every stored value, to make sure none is passed down in the owner's environment.
        const values: Buffer[] = [];
        for (const s of await vault.storage.listSecrets()) values.push(await vault.revealSecret(s.id));
        return { derived, providers, values };
      });
      const secretNames = new Set([...registry.providers.values()].flatMap((p) => secretNamesOf(p)));
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) {
        if (v === undefined || OWNER_ENV.includes(k) || secretNames.has(k)) continue;
        const bytes = Buffer.from(v);
        if (prepared.values.some((s) => s.length === bytes.length && timingSafeEqual(s, bytes))) continue;
        env[k] = v;
      }
      for (const s of prepared.values) s.fill(0);
      const token = prepared.derived.token!;
      env.AIVAULT_AGENT_TOKEN = token;
      env.AIVAULT_SOCKET ??= join(vaultDir(o), 'aivault.sock');
      if (url) {
        env.AIVAULT_URL = url;
        for (const provider of prepared.providers) {
          Object.assign(env, SDK_ENV[provider]?.(`${url}/gw/${provider}`, token) ?? {});
          env[`AIVAULT_GATEWAY_${provider.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = `${url}/gw/${provider}`;
        }
      }
      const [file, ...args] = command;
      const child = spawn(file!, args, { env, stdio: 'inherit' });
      const code = await new Promise<number>((resolve) => {
        child.once('error', () => resolve(127));
        child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
      });
      await withVault(o, (vault) => new Agents(vault).revoke(prepared.derived.agent.id)).catch(() => note(`could not revoke ${prepared.derived.agent.name}; revoke it by hand`));
      process.exitCode = code;
    });
}
