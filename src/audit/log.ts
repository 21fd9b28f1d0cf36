// The audit log: appends are durable before they resolve (a caller that needs its record
// written, such as an invoke about to go upstream, awaits it and fails closed if it
// cannot be), and appends arriving together share one transaction (group commit).
// Outcomes are queued and ride along with the next commit, or a short timer.

import type { KeyObject } from 'node:crypto';
import { AivaultError, isAivaultError } from '../errors.ts';
import { AUDIT_GENESIS, type AuditAppend, type AuditEnds, type AuditEntry, type AuditFilter, type AuditHead, type AuditOutcome, type AuditOutcomeUpdate, type AuditRecord, type AuditStorage } from '../storage/types.ts';
import { DISCONTINUITY, LOG_REPLACED, anchorState, createSealer, entryOf, headIsSound, sameHex, type KeptHead } from './chain.ts';
import { storageWriter, type AuditWriter } from './writer.ts';

const OUTCOME_FLUSH_MS = 25;
/** How soon outcomes a failed commit kept are tried again. */
const OUTCOME_RETRY_MS = 1000;
const VERIFY_PAGE = 2000;

interface Pending {
  append: AuditAppend;
  resolve: (seq: number) => void;
  reject: (err: unknown) => void;
}

export type AuditDraft = Omit<AuditEntry, 'at' | 'target' | 'capability' | 'method' | 'host' | 'path' | 'reason'> & Partial<AuditEntry>;

/** An owner change's audit record; the actor is whoever is acting unless named. */
export type ChangeDraft = Omit<AuditDraft, 'decision' | 'actor'> & { actor?: string };

export interface VerifyResult {
  ok: boolean;
  count: number;
  /** The first sequence number that does not check out (none when the fault is not one record's). */
  brokenAt?: number;
  problem?: string;
}

export interface HeadCheck {
  /** The last record's seq, as the head says (0: no head). */
  seq: number;
  /** The head carries this vault's seal. */
  sealed: boolean;
  /** What is wrong between the head and its anchor in the vault's storage; null when in step. */
  anchorProblem: string | null;
}

/** The most a record field holds: an agent chooses some of them (a capability id it made up). */
const MAX_FIELD = 512;
/** A path may be as long as the path rules allow, with its query parameters' names. */
const MAX_PATH_FIELD = 8192;

/**
 * Record fields may carry what an agent sent, so each is bounded (a cut one ends in `…`).
 * NUL cannot be stored as text by every engine, and one unstorable record would fail the
 * whole group commit it rides in, so it is replaced before the record is hashed. Other
 * control characters are kept as sent and escaped wherever a record is shown to a person.
 */
function text(value: string, max = MAX_FIELD): string {
  const bounded = value.length > max ? `${value.slice(0, max - 1)}…` : value;
  return bounded.includes('\u0000') ? bounded.replace(/\u0000/g, '\ufffd') : bounded;
}

function optional(value: string | null | undefined, max = MAX_FIELD): string | null {
  return value == null ? null : text(value, max);
}

/** The same head and anchor (MACs included: equal text means equal ends). */
function sameEnds(a: AuditEnds, b: AuditEnds): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class AuditLog {
  readonly #storage: AuditStorage;
  readonly #sealer: ReturnType<typeof createSealer>;
  #writer: AuditWriter;
  #appends: Pending[] = [];
  #outcomes: AuditOutcomeUpdate[] = [];
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> = Promise.resolve();

  constructor(storage: AuditStorage & { close(): Promise<void> }, key: KeyObject | Uint8Array) {
    this.#storage = storage;
    this.#sealer = createSealer(key);
    this.#writer = storageWriter(storage, this.#sealer);
  }

  /** Commits future batches through `writer` (after everything queued so far is written). */
  async useWriter(writer: AuditWriter): Promise<void> {
    await this.flush();
    const previous = this.#writer;
    this.#writer = writer;
    await previous.close();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#writer.close();
  }

  /** Appends one record; resolves with its seq once it is committed. */
  append(draft: AuditDraft, outcome?: AuditOutcome): Promise<number> {
    const entry: AuditEntry = {
      at: draft.at ?? new Date().toISOString(),
      actor: text(draft.actor),
      action: text(draft.action),
      target: optional(draft.target),
      capability: optional(draft.capability),
      method: optional(draft.method),
      host: optional(draft.host),
      path: optional(draft.path, MAX_PATH_FIELD),
      decision: draft.decision,
      reason: optional(draft.reason),
    };
    return new Promise((resolve, reject) => {
      this.#appends.push({ append: outcome ? { entry, outcome } : { entry }, resolve, reject });
      this.#schedule();
    });
  }

  /** Records what became of an allowed action; written with the next commit. */
  complete(seq: number, outcome: AuditOutcome): void {
    this.#outcomes.push({ seq, outcome });
    this.#flushIn(OUTCOME_FLUSH_MS);
  }

  /** A commit within `ms` (or sooner, with the next append). */
  #flushIn(ms: number): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#schedule();
    }, ms);
    this.#timer.unref?.();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#inflight = this.#inflight.then(() => this.#flushNow());
    });
  }

  async #flushNow(): Promise<void> {
    const appends = this.#appends;
    const outcomes = this.#outcomes;
    if (appends.length === 0 && outcomes.length === 0) return;
    this.#appends = [];
    this.#outcomes = [];
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    try {
      const seqs = await this.#writer.write(appends.map((p) => p.append), outcomes);
      appends.forEach((p, i) => p.resolve(seqs[i]!));
    } catch (err) {
      const failure = isAivaultError(err) && err.code !== 'INTERNAL_ERROR'
        ? err
        : new AivaultError('AUDIT_UNAVAILABLE', 'the audit log could not be written', { cause: err });
      for (const p of appends) p.reject(failure);
      // An outcome is a fact about a request that went upstream: kept for the next commit,
      // not dropped (a commit refused while a planted trigger stood lost it). Only requests
      // already allowed have outcomes, and a log that cannot be written allows no more, so
      // what waits here stays bounded by what was in flight.
      this.#outcomes = outcomes.concat(this.#outcomes);
      if (this.#outcomes.length > 0) this.#flushIn(OUTCOME_RETRY_MS);
    }
  }

  /** Writes everything queued (outcomes included) and waits for it. */
  async flush(): Promise<void> {
    this.#scheduled = false;
    this.#inflight = this.#inflight.then(() => this.#flushNow());
    await this.#inflight;
  }

  /** The records, with everything queued so far written first (an outcome waiting for its timer included). */
  async list(filter?: AuditFilter): Promise<AuditRecord[]> {
    await this.flush();
    return this.#storage.readAudit(filter);
  }

  /** The current head, MAC'd for keeping outside the machine (`aivault audit verify` checks the log against it). */
  async keptHead(): Promise<KeptHead> {
    await this.flush();
    const { head } = await this.#storage.readAuditEnds();
    if (!head) throw new AivaultError('AUDIT_CHAIN_BROKEN', 'the audit log has no head');
    const body = { seq: head.seq, hash: head.hash, at: new Date().toISOString() };
    return { ...body, mac: this.#sealer.keptHeadMac(body) };
  }

  /**
   * Walks the whole chain; reports the first record that does not check out, then checks
   * the head (and its count of outcomes) and the anchor in the vault's own storage, and,
   * given a head kept elsewhere, that the chain still holds it. A daemon may write while the
   * walk goes on (it reads the log a page at a time): the head and anchor are read together
   * first, the chain must hold that head, and outcomes written meanwhile can only add to its
   * count; when nothing was written during the walk, the count must match exactly.
   */
  async verify(options: { against?: KeptHead } = {}): Promise<VerifyResult> {
    const against = options.against;
    if (against && !(Number.isSafeInteger(against.seq) && typeof against.hash === 'string' && typeof against.at === 'string' && sameHex(String(against.mac), this.#sealer.keptHeadMac(against)))) {
      throw new AivaultError('INVALID_ARGUMENT', 'the kept head was not signed by this vault (or was altered)');
    }
    await this.flush();
    const ends = await this.#storage.readAuditEnds();
    const head = ends.head;
    let prev = AUDIT_GENESIS;
    let expected = 1;
    /** Outcomes of the records the head covers, and that record's hash. */
    let outcomes = 0;
    let hashAtHead: string | undefined;
    for (;;) {
      const page = await this.#storage.readAudit({ afterSeq: expected - 1, limit: VERIFY_PAGE });
      for (const r of page) {
        const broken = (problem: string): VerifyResult => ({ ok: false, count: expected - 1, brokenAt: r.seq, problem });
        if (r.seq !== expected) return { ok: false, count: expected - 1, brokenAt: expected, problem: `record ${expected} is missing` };
        if (r.prevHash !== prev) return broken('it does not follow the record before it');
        if (!sameHex(r.hash, this.#sealer.hash(prev, r.seq, entryOf(r)))) return broken('its content does not match its hash');
        if ((r.outcome === null) !== (r.outcomeMac === null) || (r.outcome !== null && !sameHex(r.outcomeMac, this.#sealer.outcomeMac(r.seq, r.outcome)))) {
          return broken('its outcome does not match its MAC');
        }
        if (r.action === DISCONTINUITY && r.reason === LOG_REPLACED) return broken(`when it was written, the log did not match its anchor in the vault's storage (${r.target}): records had been cut, cleared or put back`);
        if (against && r.seq === against.seq && r.hash !== against.hash) return broken('it is not the record of the head kept outside (the chain was rewritten from here)');
        if (head && r.seq <= head.seq) {
          if (r.outcome !== null) outcomes += 1;
          if (r.seq === head.seq) hashAtHead = r.hash;
        }
        prev = r.hash;
        expected += 1;
      }
      if (page.length < VERIFY_PAGE) break;
    }
    const count = expected - 1;
    if (count === 0) return { ok: false, count, brokenAt: 1, problem: 'the log is empty, but every vault records at least its creation' };
    if (against && against.seq > count) return { ok: false, count, brokenAt: count + 1, problem: `the chain ends at ${count}, before the head kept outside (${against.seq})` };
    if (!head || !headIsSound(this.#sealer, head)) {
      return { ok: false, count, brokenAt: count + 1, problem: 'the chain head is missing or forged' };
    }
    // Nothing written during the walk: the chain must end exactly at the head.
    const quiet = sameEnds(ends, await this.#storage.readAuditEnds());
    if (head.seq > count || hashAtHead !== head.hash || (quiet && head.seq !== count)) {
      return { ok: false, count, brokenAt: Math.min(head.seq, count + 1), problem: `the chain ends at ${count} but its head says ${head.seq}` };
    }
    if (head.outcomes !== undefined && (quiet ? outcomes !== head.outcomes : outcomes < head.outcomes)) {
      return { ok: false, count, problem: `the head counts ${head.outcomes} outcomes but the chain holds ${outcomes}: outcomes were removed` };
    }
    const problem = await this.anchorProblem(ends);
    return problem === undefined ? { ok: true, count } : { ok: false, count, problem };
  }

  /**
   * What the head alone tells, in reads that do not grow with the log: where the chain
   * ends, whether the head's seal is sound, and whether the anchor is in step. It does not
   * walk the records (`verify` does): a record changed inside the chain does not show here.
   */
  async headCheck(): Promise<HeadCheck> {
    await this.flush();
    const ends = await this.#storage.readAuditEnds();
    const head = ends.head;
    return { seq: head?.seq ?? 0, sealed: head !== undefined && headIsSound(this.#sealer, head), anchorProblem: (await this.anchorProblem(ends)) ?? null };
  }

  /**
   * Whether the log's head and its anchor in the vault's storage are in step (undefined) or
   * what is wrong. Cheap (two reads): `secrets verify` asks too, since an older vault.db
   * put back shows here and nowhere else.
   */
  async anchorProblem(ends?: AuditEnds): Promise<string | undefined> {
    const { head, anchor } = ends ?? (await this.#storage.readAuditEnds());
    const at = (h: AuditHead | undefined) => (h ? String(h.seq) : 'nothing');
    switch (anchorState(this.#sealer, head, anchor)) {
      case 'same':
      case 'unanchored':
        return undefined;
      case 'interrupted':
        return `the log (at ${at(head)}) and its anchor in the vault's storage (at ${at(anchor)}) are one commit apart: a crash between the two files' commits leaves this until the next write records it; so does removing the log's last commit`;
      case 'mismatch':
        return `the log ends at ${at(head)} but the vault's storage anchors ${at(anchor)}: the log was cut, cleared or put back from an older copy, or the vault's storage was, or the anchor removed`;
    }
  }
}
