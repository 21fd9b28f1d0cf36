// The audit chain's arithmetic. Each record's hash is an HMAC (keyed by a subkey of the
// vault key) over the previous hash, its sequence number and its canonical content, so
// only a process holding the unlocked vault can extend or rewrite the chain. Outcomes,
// written once the upstream has answered, carry their own MAC bound to the record's seq,
// and the head (last seq and hash) is MAC'd so cutting records off the end shows too.

import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../registry/canonical.ts';
import type { AuditEntry, AuditOutcome, AuditSealer } from '../storage/types.ts';

function mac(key: KeyObject | Uint8Array, label: string, payload: string): string {
  return createHmac('sha256', key).update(`aivault audit ${label} v1\u0000`).update(payload).digest('hex');
}

export function createSealer(key: KeyObject | Uint8Array): AuditSealer {
  return {
    // A fixed field order: every field of the entry, nothing else, cheap to serialise.
    hash: (prevHash, seq, e) =>
      mac(key, 'record', JSON.stringify([prevHash, seq, e.at, e.actor, e.action, e.target, e.capability, e.method, e.host, e.path, e.decision, e.reason])),
    outcomeMac: (seq, outcome) => mac(key, 'outcome', canonicalJson({ seq, outcome })),
    headMac: (seq, hash) => mac(key, 'head', canonicalJson({ seq, hash })),
  };
}

export function sameHex(a: string | null, b: string): boolean {
  if (a === null || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The hashed fields of a record, in a fixed shape (extra columns never change a hash). */
export function entryOf(r: AuditEntry): AuditEntry {
  return {
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    capability: r.capability,
    method: r.method,
    host: r.host,
    path: r.path,
    decision: r.decision,
    reason: r.reason,
  };
}

export type { AuditOutcome };
