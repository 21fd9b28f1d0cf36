// Where committed audit batches go: a storage connection on the event loop (one-shot CLI
// commands, PostgreSQL, whose commits are I/O the loop awaits anyway) or, for the daemon on
// the embedded engine, a thread of its own (thread.ts) whose fsync holds no request up.

import { Worker } from 'node:worker_threads';
import { AivaultError, isErrorCode } from '../errors.ts';
import type { AuditAppend, AuditOutcomeUpdate, AuditSealer, AuditStorage } from '../storage/types.ts';
import type { ThreadOptions, ThreadReply, ThreadRequest } from './thread.ts';

/**
 * `full`: an audit record is flushed to disk before the request it records goes upstream.
 * `crash-safe`: it is in the write-ahead log first (it survives the process being killed,
 * and the request is still refused if it cannot be written), and on disk at the next
 * checkpoint, so a power loss can drop the last records.
 */
export type AuditDurability = 'full' | 'crash-safe';

export interface AuditWriter {
  write(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[]): Promise<number[]>;
  close(): Promise<void>;
}

/** Commits through `storage`; `owned` storage is closed with the writer. */
export function storageWriter(storage: AuditStorage & { close(): Promise<void> }, sealer: AuditSealer, owned = false): AuditWriter {
  return {
    write: (appends, outcomes) => storage.writeAudit(appends, outcomes, sealer),
    close: async () => {
      if (owned) await storage.close();
    },
  };
}

function replyError(reply: ThreadReply): AivaultError {
  return new AivaultError(reply.code && isErrorCode(reply.code) ? reply.code : 'AUDIT_UNAVAILABLE', reply.message ?? 'the audit log could not be written');
}

interface Waiter {
  resolve: (seqs: number[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Commits on a thread of its own, opened on the embedded database at `options.path`. The
 * thread starts in the background (batches wait for it); one that cannot open the file, or
 * dies, fails its batches closed, and the next batch starts another.
 */
export function threadWriter(options: ThreadOptions): AuditWriter {
  const waiting = new Map<number, Waiter>();
  let nextId = 1;
  let closing = false;
  let worker: Promise<Worker> | undefined;

  const running = (): Promise<Worker> => {
    worker ??= start(options).then(attach, (err: unknown) => {
      worker = undefined;
      throw err;
    });
    return worker;
  };

  function attach(w: Worker): Worker {
    w.on('message', (reply: ThreadReply) => {
      const waiter = waiting.get(reply.id);
      if (!waiter) return;
      waiting.delete(reply.id);
      if (waiting.size === 0) w.unref();
      if (reply.seqs) waiter.resolve(reply.seqs);
      else waiter.reject(replyError(reply));
    });
    // A thread that throws exits too: the exit answers for it.
    w.on('error', () => {});
    w.once('exit', () => {
      worker = undefined;
      const lost = new AivaultError('AUDIT_UNAVAILABLE', 'the audit writer thread stopped before it answered');
      for (const waiter of waiting.values()) waiter.reject(lost);
      waiting.clear();
    });
    // Idle, it does not keep the process alive; a batch in flight does.
    w.unref();
    return w;
  }
  void running().catch(() => {}); // start now; a failure shows on the first batch

  return {
    async write(appends, outcomes) {
      if (closing) throw new AivaultError('AUDIT_UNAVAILABLE', 'the audit log is closed');
      const w = await running();
      const id = nextId++;
      const done = new Promise<number[]>((resolve, reject) => waiting.set(id, { resolve, reject }));
      w.ref();
      w.postMessage({ id, appends: [...appends], outcomes: [...outcomes] } satisfies ThreadRequest);
      return done;
    },
    async close() {
      closing = true;
      const w = await worker?.catch(() => undefined);
      if (!w) return;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.ref();
      w.postMessage({ id: 0, close: true } satisfies ThreadRequest);
      await exited;
    },
  };
}

async function start(options: ThreadOptions): Promise<Worker> {
  const worker = new Worker(new URL('./thread.ts', import.meta.url), { workerData: options });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (reply: ThreadReply) => (reply.code ? reject(replyError(reply)) : resolve()));
      worker.once('error', (err) => reject(new AivaultError('AUDIT_UNAVAILABLE', 'the audit writer thread did not start', { cause: err })));
      worker.once('exit', () => reject(new AivaultError('AUDIT_UNAVAILABLE', 'the audit writer thread did not start')));
    });
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  return worker;
}
