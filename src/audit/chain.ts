// The audit chain's arithmetic. Each record's hash is an HMAC (keyed by a subkey of the
// vault key) over the previous hash, its sequence number and its canonical content, so
// only a process holding the unlocked vault can extend or rewrite the chain. Outcomes,
// written once the upstream has answered, carry their own MAC bound to the record's seq.
// The head (last seq and hash, and how many outcomes the chain holds) is MAC'd and kept
// twice, in the log and as the anchor in the vault's own storage, written in the same
// commit: cutting records off the end, clearing outcomes, or putting back an older log
// file then shows as a head or anchor the chain does not match.

import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../registry/canonical.ts';
import type { AuditAppend, AuditEntry, AuditHead, AuditOutcome, AuditSealer, HeadPosition } from '../storage/types.ts';

function mac(key: KeyObject | Uint8Array, label: string, payload: string): string {
  return createHmac('sha256', key).update(`aivault audit ${label} v1\u0000`).update(payload).digest('hex');
}

/** A head an owner keeps outside the machine (`aivault audit head`), to check the chain against later. */
export interface KeptHead {
  seq: number;
  hash: string;
  at: string;
  mac: string;
}

export function createSealer(key: KeyObject | Uint8Array): AuditSealer & { keptHeadMac(head: Omit<KeptHead, 'mac'>): string } {
  return {
    keptHeadMac: (h) => mac(key, 'kept head', canonicalJson({ seq: h.seq, hash: h.hash, at: h.at })),
    // A fixed field order: every field of the entry, nothing else, cheap to serialise.
    hash: (prevHash, seq, e) =>
      mac(key, 'record', JSON.stringify([prevHash, seq, e.at, e.actor, e.action, e.target, e.capability, e.method, e.host, e.path, e.decision, e.reason])),
    outcomeMac: (seq, outcome) => mac(key, 'outcome', canonicalJson({ seq, outcome })),
    // Heads from before anchors (no outcome count) keep their old MAC; the label keeps the two apart.
    headMac: (h) =>
      h.outcomes === undefined
        ? mac(key, 'head', canonicalJson({ seq: h.seq, hash: h.hash }))
        : mac(key, 'anchored head', canonicalJson({ seq: h.seq, hash: h.hash, outcomes: h.outcomes, prev: h.prev ?? null })),
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

export function headIsSound(sealer: AuditSealer, head: AuditHead): boolean {
  const { mac: given, ...rest } = head;
  return typeof given === 'string' && sameHex(given, sealer.headMac(rest));
}

function position(head: AuditHead | HeadPosition | null | undefined): HeadPosition | undefined {
  return head && head.outcomes !== undefined ? { seq: head.seq, hash: head.hash, outcomes: head.outcomes } : undefined;
}

function samePosition(a: HeadPosition | undefined, b: HeadPosition | undefined): boolean {
  return a !== undefined && b !== undefined && a.seq === b.seq && a.hash === b.hash && a.outcomes === b.outcomes;
}

/**
 * How the log's head stands to the anchor in the vault's storage:
 * - `same`: as written together;
 * - `unanchored`: no anchor and a head from before anchors (or none): a vault not yet
 *   written by this version;
 * - `interrupted`: one is exactly one commit ahead of the other. SQLite commits the two
 *   files one after the other, so a crash (or, with crash-safe durability, a power loss)
 *   in between leaves this; so does removing exactly the last commit of the log.
 * - `mismatch`: anything else (a log cut, cleared or put back; an anchor removed or forged).
 */
export type AnchorState = 'same' | 'unanchored' | 'interrupted' | 'mismatch';

export function anchorState(sealer: AuditSealer, head: AuditHead | undefined, anchor: AuditHead | undefined): AnchorState {
  if (anchor === undefined) return head === undefined || (head.outcomes === undefined && headIsSound(sealer, head)) ? 'unanchored' : 'mismatch';
  if (!headIsSound(sealer, anchor) || (head !== undefined && !headIsSound(sealer, head))) return 'mismatch';
  const h = position(head);
  const a = position(anchor);
  if (samePosition(h, a)) return 'same';
  // The log did not take the anchor's commit (a head from before anchors has no count: its place decides).
  const behind = h ?? (head && anchor.prev ? { seq: head.seq, hash: head.hash, outcomes: anchor.prev.outcomes } : undefined);
  if (samePosition(position(anchor.prev), behind) || (head === undefined && anchor.prev === null)) return 'interrupted';
  if (head !== undefined && samePosition(position(head.prev), a)) return 'interrupted';
  return 'mismatch';
}

/** The action of the record a writer adds when it finds the log and its anchor apart. */
export const DISCONTINUITY = 'audit.discontinuity';
/** Its reason when the log was found rolled back, cut or replaced (not a crash). */
export const LOG_REPLACED = 'ANCHOR_MISMATCH';
/** Its reason when the last commit reached only one of the two files. */
export const COMMIT_INTERRUPTED = 'COMMIT_INTERRUPTED';

function describe(head: AuditHead | undefined): string {
  return head ? `seq ${head.seq}${head.outcomes === undefined ? '' : `, ${head.outcomes} outcomes`}` : 'empty';
}

/** The rows one commit appends, each chained to the one before. */
export interface ChainRow {
  seq: number;
  entry: AuditEntry;
  prevHash: string;
  hash: string;
  outcome: AuditOutcome | null;
  outcomeMac: string | null;
}

export interface ChainBatch {
  rows: ChainRow[];
  /** The seqs of `appends`, in order (the discontinuity record, if any, is not one of them). */
  seqs: number[];
  /** Outcomes the new rows carry. */
  outcomes: number;
}

/**
 * Extends the chain from `head` with `appends`; `state`: how the head stands to the anchor
 * (anchorState). When the head and the anchor disagree, the
 * batch first records that (a record the owner sees in `audit list`; one that says the log
 * was replaced makes `audit verify` fail from then on), so a writer never builds over a
 * rollback silently, and a vault stays usable after a crash.
 */
export function chainBatch(sealer: AuditSealer, head: AuditHead | undefined, anchor: AuditHead | undefined, appends: readonly AuditAppend[], genesis: string, state: AnchorState): ChainBatch {
  const all: AuditAppend[] = state === 'same' || state === 'unanchored' ? [...appends] : [
    {
      entry: {
        at: new Date().toISOString(),
        actor: 'aivault',
        action: DISCONTINUITY,
        target: `log ${describe(head)}; anchor ${describe(anchor)}`,
        capability: null,
        method: null,
        host: null,
        path: null,
        decision: 'deny',
        reason: state === 'interrupted' ? COMMIT_INTERRUPTED : LOG_REPLACED,
      },
    },
    ...appends,
  ];
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? genesis;
  const rows: ChainRow[] = [];
  let outcomes = 0;
  for (const { entry, outcome } of all) {
    seq += 1;
    const hash = sealer.hash(prev, seq, entry);
    rows.push({ seq, entry, prevHash: prev, hash, outcome: outcome ?? null, outcomeMac: outcome ? sealer.outcomeMac(seq, outcome) : null });
    if (outcome) outcomes += 1;
    prev = hash;
  }
  return { rows, seqs: rows.slice(rows.length - appends.length).map((r) => r.seq), outcomes };
}

/** The head after a commit: where the chain now ends, and where it ended before. */
export function nextHead(sealer: AuditSealer, before: AuditHead | undefined, end: { seq: number; hash: string }, outcomes: number, beforeOutcomes: number): AuditHead {
  const body = {
    seq: end.seq,
    hash: end.hash,
    outcomes,
    prev: before ? { seq: before.seq, hash: before.hash, outcomes: beforeOutcomes } : null,
  };
  return { ...body, mac: sealer.headMac(body) };
}

export type { AuditOutcome };
