// The audit writer's thread: it owns a connection of its own to the embedded database and
// commits the batches the event loop sends it, so a commit's fsync never holds the loop
// (requests in flight keep moving while one batch waits for the disk, and the next batch
// grows meanwhile: group commit under load). See writer.ts for the event loop's side.

import { parentPort, workerData } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { isAivaultError } from '../errors.ts';
import { SqliteStorage } from '../storage/sqlite.ts';
import type { AuditAppend, AuditOutcomeUpdate } from '../storage/types.ts';
import { createSealer } from './chain.ts';

export interface ThreadOptions {
  path: string;
  synchronous: 'FULL' | 'NORMAL';
  key: KeyObject;
}

export type ThreadRequest = { id: number; appends: AuditAppend[]; outcomes: AuditOutcomeUpdate[] } | { id: number; close: true };

/** Id 0 answers the open. A failure is a stable code and our own message (records are not echoed). */
export type ThreadReply = { id: number; seqs?: number[]; code?: string; message?: string };

function failure(id: number, err: unknown): ThreadReply {
  return isAivaultError(err) && err.code !== 'INTERNAL_ERROR'
    ? { id, code: err.code, message: err.message }
    : { id, code: 'AUDIT_UNAVAILABLE', message: 'the audit log could not be written' };
}

const { path, synchronous, key } = workerData as ThreadOptions;
const port = parentPort!;
const sealer = createSealer(key);
let storage: SqliteStorage | undefined;
try {
  storage = SqliteStorage.open(path, { synchronous });
  port.postMessage({ id: 0 } satisfies ThreadReply);
} catch (err) {
  port.postMessage(failure(0, err));
}

port.on('message', (req: ThreadRequest) => {
  if (!storage) return;
  if ('close' in req) {
    void storage.close().finally(() => port.close());
    return;
  }
  storage.writeAudit(req.appends, req.outcomes, sealer).then(
    (seqs) => port.postMessage({ id: req.id, seqs } satisfies ThreadReply),
    (err: unknown) => port.postMessage(failure(req.id, err)),
  );
});
