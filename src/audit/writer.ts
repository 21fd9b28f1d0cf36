// Where committed audit batches go. The direct writer commits on the caller's thread; the
// worker writer (for long-running brokers on the embedded engine) commits on its own
// thread and connection, so the disk flush of one batch overlaps the next requests.

import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AivaultError } from '../errors.ts';
import type { AuditAppend, AuditOutcomeUpdate, AuditSealer, BrokerStorage } from '../storage/types.ts';

export interface AuditWriter {
  write(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[]): Promise<number[]>;
  close(): Promise<void>;
}

export function directWriter(storage: BrokerStorage, sealer: AuditSealer): AuditWriter {
  return {
    write: (appends, outcomes) => storage.writeAudit(appends, outcomes, sealer),
    close: async () => {},
  };
}

/**
 * `full`: an audit record is on disk before the request it records goes upstream.
 * `crash-safe`: it is in the write-ahead log (it survives the process being killed, and the
 * request is still refused if it cannot be written), and on disk at the next checkpoint:
 * a power loss can drop the last records.
 */
export type AuditDurability = 'full' | 'crash-safe';

export interface WorkerRequest {
  id: number;
  appends: readonly AuditAppend[];
  outcomes: readonly AuditOutcomeUpdate[];
}

export type WorkerReply = { id: number; seqs: number[] } | { id: number; error: { code: string; message: string } };

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './writer-worker.ts' : './writer-worker.js', import.meta.url);

export class WorkerAuditWriter implements AuditWriter {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (seqs: number[]) => void; reject: (err: unknown) => void }>();
  #next = 1;
  #dead: AivaultError | undefined;

  constructor(databasePath: string, key: KeyObject, durability: AuditDurability = 'full') {
    this.#worker = new Worker(WORKER_URL, { workerData: { databasePath, key, synchronous: durability === 'full' ? 'FULL' : 'NORMAL' } });
    this.#worker.unref();
    this.#worker.on('message', (reply: WorkerReply) => {
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      if ('error' in reply) p.reject(new AivaultError(reply.error.code === 'VAULT_CORRUPTED' ? 'VAULT_CORRUPTED' : 'AUDIT_UNAVAILABLE', reply.error.message));
      else p.resolve(reply.seqs);
    });
    const die = () => {
      this.#dead ??= new AivaultError('AUDIT_UNAVAILABLE', 'the audit writer stopped');
      for (const p of this.#pending.values()) p.reject(this.#dead);
      this.#pending.clear();
    };
    this.#worker.on('error', die);
    this.#worker.on('exit', die);
  }

  write(appends: readonly AuditAppend[], outcomes: readonly AuditOutcomeUpdate[]): Promise<number[]> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#worker.ref();
      this.#worker.postMessage({ id, appends, outcomes } satisfies WorkerRequest);
    }).finally(() => {
      if (this.#pending.size === 0) this.#worker.unref();
    }) as Promise<number[]>;
  }

  async close(): Promise<void> {
    this.#dead ??= new AivaultError('AUDIT_UNAVAILABLE', 'the audit writer is closed');
    await this.#worker.terminate();
  }
}
