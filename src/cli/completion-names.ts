// Names for shell completion (`aivault completion names KIND`), read without the master key:
// ids and names are stored in the clear, only values are sealed, so a TAB unlocks nothing and
// never prompts. Read through the storage layer (which refuses a planted schema), without
// waiting for a writer's lock; a PostgreSQL vault, a locked or missing one completes no names
// (a TAB must not wait on a server). main.ts runs this before the command tree loads: it is
// called on every TAB.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Storage } from '../storage/types.ts';
import { vaultDir } from './context.ts';

export const NAME_KINDS = ['capabilities', 'agents', 'secrets', 'credentials', 'providers'] as const;
export type NameKind = (typeof NAME_KINDS)[number];

/**
 * What a shell may be handed as a word: bash's `compgen -W` expands what it is given (a `$(…)`
 * in a name would run), so anything beyond these characters is left out.
 */
const SHELL_SAFE = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,255}$/;

interface BuiltinNames {
  providers: string[];
  capabilities: string[];
}

/** Provider names and capability ids of the built-in registry (names only: its digest is checked where it is used). */
async function builtin(): Promise<BuiltinNames> {
  const { BUILTIN_REGISTRY_SOURCE } = await import('../registry/generated/builtin-registry.ts');
  const { providers } = JSON.parse(BUILTIN_REGISTRY_SOURCE) as { providers: Array<{ provider: string; capabilities: Array<{ id: string }> }> };
  return { providers: providers.map((p) => p.provider), capabilities: providers.flatMap((p) => p.capabilities.map((c) => c.id)) };
}

/** The vault's own names of `kind`; none when the vault cannot be read this way. */
async function stored(kind: NameKind, dir: string): Promise<string[]> {
  const path = join(dir, 'vault.db');
  // A PostgreSQL vault keeps its URL here; its names are not worth a connection per TAB.
  if (!existsSync(path) || existsSync(join(dir, 'storage.json'))) return [];
  const { SqliteStorage } = await import('../storage/sqlite.ts');
  let storage: Storage | undefined;
  try {
    storage = SqliteStorage.open(path, { waitForLock: false });
    switch (kind) {
      case 'capabilities':
        return (await storage.listCapabilities()).map((c) => c.id);
      case 'credentials':
        return (await storage.listCredentials()).map((c) => c.name);
      case 'providers':
        return (await storage.listCredentials()).map((c) => c.provider);
      case 'agents':
        return (await storage.listAgents()).filter((a) => a.status === 'active').map((a) => a.name);
      case 'secrets':
        return (await storage.listSecrets()).flatMap((s) => [s.name, ...s.aliases]);
    }
    return [];
  } catch {
    return [];
  } finally {
    await storage?.close();
  }
}

/** The names of `kind` a command line may hold, sorted, each once, each safe to hand a shell. */
export async function completionNames(kind: string, dir: string): Promise<string[]> {
  if (!(NAME_KINDS as readonly string[]).includes(kind)) return [];
  const k = kind as NameKind;
  const fromRegistry = k === 'providers' || k === 'capabilities' || k === 'credentials' ? (await builtin())[k === 'capabilities' ? 'capabilities' : 'providers'] : [];
  return [...new Set([...fromRegistry, ...(await stored(k, dir))])].filter((n) => SHELL_SAFE.test(n)).sort();
}

/** `aivault completion names KIND`, on its own: the vault directory as every command finds it, but no command tree. */
export async function printCompletionNames(argv: readonly string[]): Promise<void> {
  const dirFlag = argv.indexOf('--dir');
  const dir = vaultDir(dirFlag >= 0 && argv[dirFlag + 1] ? { dir: argv[dirFlag + 1]! } : {});
  const names = await completionNames(argv[argv.indexOf('names') + 1] ?? '', dir);
  if (names.length > 0) process.stdout.write(names.join('\n') + '\n');
}
