// Where Node may keep its compile cache for aivault: a directory of this user's that nobody
// else can reach. What is cached there is code this process runs, so a cache another user
// could write or swap is never used (the vault's own rule for what it trusts on disk).

import { lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { assertOwnedPrivate } from '../vault/owned.ts';

/** The cache directory, made if missing; undefined (no cache) when it is not private or cannot be made. */
export function privateCompileCache(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  try {
    const dir = join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'aivault', 'compile-cache');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) return undefined;
    assertOwnedPrivate(st, dir, 'VAULT_DIR_INSECURE', '700');
    return dir;
  } catch {
    return undefined;
  }
}
