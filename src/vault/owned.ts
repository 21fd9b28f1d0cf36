// One rule for what aivault trusts on disk (a key file, the vault directory): the running
// user owns it and nobody else can reach it. A key file another user planted is a key that
// user knows; a directory another user owns or can write is one where files can be swapped.

import type { Stats } from 'node:fs';
import { AivaultError, type ErrorCode } from '../errors.ts';

/** Refuses `st` (of `what`) unless it belongs to the running user and has no group or other bits. */
export function assertOwnedPrivate(st: Stats, what: string, code: ErrorCode, chmod: '600' | '700'): void {
  if (process.platform === 'win32') return;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new AivaultError(code, `${what} belongs to uid ${st.uid}, not to the user running aivault (uid ${uid}); whoever owns it can read or replace what aivault keeps there`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new AivaultError(code, `${what} is open to other users (mode ${(st.mode & 0o777).toString(8)}); run chmod ${chmod} on it`);
  }
}
