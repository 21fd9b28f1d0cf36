// Where committed audit batches go: a storage connection, with the durability the
// deployment chose.

import type { AuditAppend, AuditOutcomeUpdate, AuditSealer, AuditStorage } from '../storage/types.ts';

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
