// Key file: 32 random bytes, base64 on one line, in a file only its owner can read.
// Weaker than a passphrase when the file sits beside the vault: whoever can read the
// directory can read both. Keep the key file elsewhere (another disk, a secrets mount).

import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { AivaultError } from '../../errors.ts';
import { MASTER_KEY_BYTES } from '../keys.ts';
import { assertOwnedPrivate } from '../owned.ts';
import type { CreatedKey, KeyProviderContext } from './types.ts';

export const DEFAULT_KEYFILE_NAME = 'master.key';

function resolvePath(dir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dir, path);
}

export function parseMasterKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new AivaultError('VAULT_LOCKED', `${source} is not a base64 key`);
  }
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== MASTER_KEY_BYTES) {
    throw new AivaultError('VAULT_LOCKED', `${source} must hold ${MASTER_KEY_BYTES} bytes of base64; it holds ${key.length}`);
  }
  return key;
}

/**
 * Reads a key file that only the running user controls: opened without following a symbolic
 * link, then checked on what was opened (no swap between check and read): a regular file,
 * owned by this user (a file another user planted there is a key that user knows), and
 * readable by nobody else.
 */
function readKeyFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new AivaultError('KEYFILE_INSECURE', `the key file ${path} is a symbolic link; name the file itself`);
    throw new AivaultError('VAULT_LOCKED', `the key file ${path} cannot be read`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new AivaultError('KEYFILE_INSECURE', `the key file ${path} is not a regular file`);
    assertOwnedPrivate(st, `the key file ${path}`, 'KEYFILE_INSECURE', '600');
    return parseMasterKey(readFileSync(fd, 'utf8'), `the key file ${path}`);
  } finally {
    closeSync(fd);
  }
}

export async function createKeyFileKey(ctx: KeyProviderContext, requested?: string): Promise<CreatedKey> {
  const stored = requested ?? DEFAULT_KEYFILE_NAME;
  const path = resolvePath(ctx.dir, stored);
  let masterKey: Buffer;
  try {
    masterKey = randomBytes(MASTER_KEY_BYTES);
    // 'wx': never overwrite an existing key file, it may guard another vault.
    writeFileSync(path, masterKey.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || requested === undefined) {
      throw new AivaultError('VAULT_ALREADY_INITIALIZED', `cannot create the key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    // An existing key file the owner named on purpose is used as is.
    masterKey = readKeyFile(path);
  }
  return { config: { kind: 'keyfile', path: stored }, masterKey };
}

export async function unlockKeyFileKey(path: string, ctx: KeyProviderContext): Promise<Buffer> {
  const override = ctx.env.AIVAULT_KEY_FILE;
  return readKeyFile(resolvePath(ctx.dir, override && override.length > 0 ? override : path));
}
