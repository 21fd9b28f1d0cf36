// The audit functions the owner-decision modules (agents, approvals, owners) are handed,
// in place of the whole vault: a test can hand them a fake that records the drafts.

import type { AuditDraft, ChangeDraft } from '../audit/log.ts';

export type { ChangeDraft };

/**
 * Runs `change` with its audit record written first, so a change that cannot be audited
 * does not happen, then records how it ended (the signature of `Vault.audited`). A batch
 * passes one draft per thing it changes: every record is written first.
 */
export type AuditedChange = <T>(draft: ChangeDraft | readonly ChangeDraft[], change: () => Promise<T>) => Promise<T>;

/** Appends one record that is not an owner change, such as a refusal (`AuditLog.append`). */
export interface AuditAppender {
  append(draft: AuditDraft): Promise<number>;
}
