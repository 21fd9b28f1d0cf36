// One owner operation: its argument schema (strict), what it runs over the services, and the
// shape of its result, which is the same in process and over the daemon's signed RPC. A secret
// value may be an argument; no result carries one.

import { z } from 'zod';
import type { Services } from '../services.ts';

export interface OwnerOperation<A extends z.ZodType = z.ZodType, R = unknown, V = R> {
  args: A;
  run(services: Services, args: z.output<A>): Promise<R>;
  /** The result as the owner gets it, from what `run` returned (when that is not it already). */
  view?(result: R): V;
  /** The local dispatcher opens the vault to verify it (a tampered vault still opens, to be reported). */
  opensToVerify?: true;
}

/** Types an entry from its parts (the result shape is the view's, or run's without one). */
export function operation<A extends z.ZodType, R, V = R>(entry: OwnerOperation<A, R, V>): OwnerOperation<A, R, V> {
  return entry;
}

export const name = z.string().min(1).max(256);
export const secretValue = z.string().min(1).max(64 * 1024);
export const flag = z.boolean().optional();
export const none = z.strictObject({});
