// The owner operations: one table, run in process by the CLI and through the daemon's signed
// RPC (`POST /v1/owner/rpc`) alike, so both can do the same things and answer the same shapes.
//
// Owner commands that stay local, and why:
// - init, rotate-master, status: they create, re-key or inspect the vault on this machine.
// - registry, completion, explain: they read no vault.
// - serve: it is the daemon.
// - setup, run: they write configuration or start processes on this machine.
// - secrets ingest, oauth login: they read values on this machine (a one-shot loopback
//   endpoint, a terminal prompt) before storing them.
// - secrets verify: it checks the vault's files on disk against their seal.
// - invoke, json, markdown, flow run: the owner invoking, which streams an upstream answer
//   rather than returning a result.

import { z } from 'zod';
import { AivaultError } from '../errors.ts';
import type { Services } from '../services.ts';
import { accessOperations } from './access-ops.ts';
import { auditOperations } from './audit-ops.ts';
import { definitionsOperations } from './definitions-ops.ts';
import type { OwnerOperation } from './operation.ts';
import { secretsOperations } from './secrets-ops.ts';

export const OWNER_OPERATIONS = { ...secretsOperations, ...definitionsOperations, ...accessOperations, ...auditOperations };

export type OwnerOp = keyof typeof OWNER_OPERATIONS;
type Entry<K extends OwnerOp> = (typeof OWNER_OPERATIONS)[K];
/** What a caller passes: the schema's input. */
export type OwnerArgs<K extends OwnerOp> = z.input<Entry<K>['args']>;
/** What comes back: the view's result, or run's. */
export type OwnerResult<K extends OwnerOp> = Entry<K> extends OwnerOperation<z.ZodType, unknown, infer V> ? V : never;

/** The wire form of a call: `{op, args}`. */
export const OwnerCall = z.strictObject({ op: z.string().max(64), args: z.record(z.string(), z.unknown()).default({}) });

export function ownerOperation(op: string): OwnerOperation {
  if (!Object.hasOwn(OWNER_OPERATIONS, op)) throw new AivaultError('INVALID_ARGUMENT', `unknown owner operation; one of ${Object.keys(OWNER_OPERATIONS).join(', ')}`);
  return OWNER_OPERATIONS[op as OwnerOp] as OwnerOperation;
}

/** Validates `rawArgs` against the operation's schema and runs it; the result in its owner-visible shape. */
export async function runOwnerOperation(services: Services, op: string, rawArgs: unknown): Promise<unknown> {
  const entry = ownerOperation(op);
  const parsed = entry.args.safeParse(rawArgs);
  if (!parsed.success) throw new AivaultError('INVALID_ARGUMENT', `invalid arguments for ${op}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(args)'} ${i.message}`).join('; ')}`);
  const result = await entry.run(services, parsed.data);
  return entry.view ? entry.view(result) : result;
}
