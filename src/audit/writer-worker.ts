// The audit writer thread: its own connection to the vault database, the audit key, and
// one transaction (one disk flush) per batch it is sent.

import type { KeyObject } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { AivaultError } from '../errors.ts';
import { SqliteStorage } from '../storage/sqlite.ts';
import { createSealer } from './chain.ts';
import type { WorkerReply, WorkerRequest } from './writer.ts';

const { databasePath, key, synchronous } = workerData as { databasePath: string; key: KeyObject; synchronous: 'FULL' | 'NORMAL' };
const storage = SqliteStorage.open(databasePath, { synchronous });
const sealer = createSealer(key);

parentPort!.on('message', async (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = { id: req.id, seqs: await storage.writeAudit(req.appends, req.outcomes, sealer) };
  } catch (err) {
    reply = { id: req.id, error: err instanceof AivaultError ? err.toJSON() : { code: 'AUDIT_UNAVAILABLE', message: 'the audit log could not be written' } };
  }
  parentPort!.postMessage(reply);
});
