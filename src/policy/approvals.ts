// Owner approvals: a grant marked `approve: each | first` makes an invoke wait, bounded,
// until the owner approves or denies it (`aivault approvals`, from any process: the
// decision is a conditional update in storage, which the waiting broker polls).

import { randomBytes } from 'node:crypto';
import { OWNER_LOCAL, currentActor } from '../audit/actor.ts';
import { AivaultError } from '../errors.ts';
import type { AgentRecord, AgentStorage, ApprovalDetails, ApprovalRecord, ApprovalStatus, ApprovalStorage, GrantRecord } from '../storage/types.ts';
import type { AuditedChange } from './audited.ts';

export const DEFAULT_APPROVAL_TIMEOUT_MS = 120_000;
export const MAX_APPROVAL_TIMEOUT_MS = 30 * 60_000;

export interface ApprovalOptions {
  timeoutMs: number;
  pollMs: number;
  /** Told of each new pending approval (the daemon's notification command). */
  notify?: (approval: ApprovalRecord) => void;
}

export interface ApprovalRequest {
  capability: string;
  method: string;
  host: string;
  path: string;
  /** What the owner is shown, and the digest of what will be sent. */
  details: ApprovalDetails;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const iso = (ms: number) => new Date(ms).toISOString();

/** What Approvals works with (a Vault has all of it). */
export interface ApprovalsDeps {
  /** The approvals, and the grants whose `approve: first` they mark. */
  storage: ApprovalStorage & Pick<AgentStorage, 'getGrant' | 'markGrantApproved'>;
  audited: AuditedChange;
  /** The clock, in ms since the epoch: deadlines, timestamps. */
  now?: () => number;
}

export class Approvals {
  // Called through the object handed in, so a Vault's own methods keep their `this`.
  readonly #deps: ApprovalsDeps;
  #options: ApprovalOptions = { timeoutMs: DEFAULT_APPROVAL_TIMEOUT_MS, pollMs: 200 };

  constructor(deps: ApprovalsDeps) {
    this.#deps = deps;
  }

  #now(): number {
    return this.#deps.now?.() ?? Date.now();
  }

  configure(options: Partial<ApprovalOptions>): void {
    const next = { ...this.#options, ...options };
    if (!(next.timeoutMs >= 1000 && next.timeoutMs <= MAX_APPROVAL_TIMEOUT_MS)) throw new AivaultError('INVALID_ARGUMENT', `an approval timeout is 1 s to ${MAX_APPROVAL_TIMEOUT_MS / 60_000} min`);
    this.#options = next;
  }

  /** Whether an invoke under `grant` waits for the owner. */
  needed(grant: GrantRecord): boolean {
    return grant.approve !== null && !(grant.approve === 'first' && grant.firstApprovedAt !== null);
  }

  /**
   * Waits for the owner when the grant asks for it. Resolves with the approval (null when
   * none was needed); APPROVAL_DENIED or APPROVAL_TIMEOUT otherwise. Nothing goes upstream
   * before this resolves.
   */
  async await(agent: AgentRecord, grant: GrantRecord, request: ApprovalRequest, signal?: AbortSignal): Promise<ApprovalRecord | null> {
    if (!this.needed(grant)) return null;
    const storage = this.#deps.storage;
    const now = this.#now();
    const approval: ApprovalRecord = {
      id: `apr_${randomBytes(9).toString('base64url')}`,
      agentId: agent.id,
      ...request,
      status: 'pending',
      requestedAt: iso(now),
      expiresAt: iso(now + this.#options.timeoutMs),
      decidedAt: null,
      decidedBy: null,
    };
    await storage.putApproval(approval);
    this.#options.notify?.(approval);
    const deadline = now + this.#options.timeoutMs;
    for (;;) {
      const current = await storage.getApproval(approval.id);
      if (current?.status === 'approved') {
        // What was approved is what is sent: the request the owner was shown (as stored) must
        // be the one waiting here.
        if (current.details?.digest !== request.details.digest) {
          throw new AivaultError('APPROVAL_DENIED', `the approved request is not the one waiting (${approval.id}); nothing was sent`);
        }
        if (grant.approve === 'first') await storage.markGrantApproved(agent.id, grant.capability, current.decidedAt ?? iso(this.#now()));
        return current;
      }
      if (current?.status === 'denied') throw new AivaultError('APPROVAL_DENIED', `the owner denied this invoke (${approval.id})`);
      // Expired elsewhere (or gone): no decision can come for it any more.
      if (current?.status !== 'pending') throw new AivaultError('APPROVAL_TIMEOUT', `the approval ${approval.id} expired without an owner decision`);
      if (grant.approve === 'first') {
        // Another invoke of the same grant was approved meanwhile: the first approval covers
        // this one, unless the owner decided this one first (the next read takes that decision).
        const fresh = await storage.getGrant(agent.id, grant.capability);
        if (fresh?.firstApprovedAt && (await storage.decideApproval(approval.id, 'approved', 'grant:first-approved', iso(this.#now())))) {
          const approved = await storage.getApproval(approval.id);
          if (approved) return approved;
        }
      }
      if (this.#now() >= deadline || signal?.aborted) {
        // Expire it, unless the owner decided in the last instant: then take the decision.
        if (await storage.decideApproval(approval.id, 'expired', 'aivault', iso(this.#now()))) {
          throw new AivaultError('APPROVAL_TIMEOUT', signal?.aborted ? `the agent went away before approval (${approval.id})` : `no owner decision within ${Math.round(this.#options.timeoutMs / 1000)} s (${approval.id})`);
        }
        continue;
      }
      await sleep(this.#options.pollMs);
    }
  }

  list(status?: ApprovalStatus): Promise<ApprovalRecord[]> {
    return this.#deps.storage.listApprovals(status);
  }

  /** The owner's decision, audited with who made it. */
  async decide(id: string, decision: 'approve' | 'deny'): Promise<ApprovalRecord> {
    const storage = this.#deps.storage;
    const existing = await storage.getApproval(id);
    if (!existing) throw new AivaultError('APPROVAL_NOT_FOUND', `no approval ${id.slice(0, 40)}`);
    const by = currentActor() ?? OWNER_LOCAL;
    const action = decision === 'approve' ? 'approval.approve' : 'approval.deny';
    await this.#deps.audited({ action, target: `approval:${id} agent:${existing.agentId} capability:${existing.capability}` }, async () => {
      if (!(await storage.decideApproval(id, decision === 'approve' ? 'approved' : 'denied', by, iso(this.#now())))) {
        throw new AivaultError('APPROVAL_NOT_PENDING', `${id} is no longer pending (${(await storage.getApproval(id))?.status ?? 'gone'})`);
      }
    });
    return (await storage.getApproval(id))!;
  }
}
