// Who is acting, for audit records written deep inside owner operations: set once where a
// request is authenticated (the daemon's owner routes), read where the record is written.

import { AsyncLocalStorage } from 'node:async_hooks';

/** The actor recorded for commands run by whoever holds the vault key on this machine. */
export const OWNER_LOCAL = 'owner:local';

const current = new AsyncLocalStorage<string>();

export function runAs<T>(actor: string, fn: () => Promise<T>): Promise<T> {
  return current.run(actor, fn);
}

export function currentActor(): string | undefined {
  return current.getStore();
}
