// The operating-system failures a person can act on (a port in use, a directory they may not
// write, a full disk), turned into stable codes whose message names the address or path. The
// daemon and the CLI meet them when they listen or write files; anything else stays unexpected.

import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { AivaultError } from './errors.ts';

/** sun_path holds 108 bytes on Linux (104 on macOS and the BSDs), the terminating NUL included. */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

export function checkSocketPath(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new AivaultError('PATH_TOO_LONG', `the socket path ${path} is ${bytes} bytes; a Unix socket path may hold at most ${MAX_SOCKET_PATH_BYTES}: choose a shorter one`);
  }
}

/**
 * `err` as a coded failure when it is one a person can fix, naming `what` (an address, or a
 * path when `kind` is 'socket' or 'file'); otherwise `err` unchanged.
 */
export function osError(err: unknown, what: string, kind: 'address' | 'socket' | 'file'): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return new AivaultError('ADDRESS_IN_USE', `${what} is already in use by another program: stop it, or choose another ${kind === 'address' ? 'port' : 'path'}`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new AivaultError('ADDRESS_UNAVAILABLE', `${what} is not an address of this machine (is IPv6 turned off?)`, { cause: err });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      // libuv reports a socket in a missing directory as EACCES.
      if (kind !== 'address' && !existsSync(dirname(what))) return new AivaultError('INVALID_ARGUMENT', `cannot create ${what}: ${dirname(what)} does not exist`, { cause: err });
      return new AivaultError('PERMISSION_DENIED', kind === 'address' ? `not allowed to listen on ${what} (ports below 1024 need privileges)` : `not allowed to create ${what}${code === 'EROFS' ? ' (read-only file system)' : ''}`, { cause: err });
    case 'ENOENT':
      return new AivaultError('INVALID_ARGUMENT', `cannot create ${what}: ${dirname(what)} does not exist`, { cause: err });
    case 'ENAMETOOLONG':
      return new AivaultError('PATH_TOO_LONG', `the path ${what} is too long`, { cause: err });
    case 'EINVAL':
      return kind === 'socket' ? new AivaultError('PATH_TOO_LONG', `the socket path ${what} is too long for a Unix socket`, { cause: err }) : err;
    case 'ENOSPC':
    case 'EDQUOT':
      return new AivaultError('DISK_FULL', `no space left to write ${what}: free some disk space`, { cause: err });
    default:
      return err;
  }
}
