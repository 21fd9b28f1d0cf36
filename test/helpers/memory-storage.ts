// An in-memory stand-in for the narrow storage interfaces the policy modules take (agents,
// owners, approvals, rate buckets and nonces), an audit that records what it is given, and
// a clock a test moves. The storage keeps the promises each interface states
// (src/storage/types.ts; the conformance suite holds the engines to the same ones) and
// hands out copies, so a caller cannot change what is stored by mutating what it read.
import { AivaultError } from '../../src/errors.ts';
import type { AuditDraft } from '../../src/audit/log.ts';
import type { AuditAppender, AuditedChange, ChangeDraft } from '../../src/policy/audited.ts';
import type {
  AgentRecord,
  AgentStorage,
  ApprovalRecord,
  ApprovalStatus,
  ApprovalStorage,
  BucketState,
  GrantRecord,
  OwnerRecord,
  OwnerStorage,
  SharedStateStorage,
} from '../../src/storage/types.ts';

const copy = <T>(value: T): T => structuredClone(value);
const byIdOrName = <R extends { id: string; name: string }>(rows: Iterable<R>, ref: string) => [...rows].find((r) => r.id === ref || r.name === ref);

export class MemoryStorage implements AgentStorage, OwnerStorage, ApprovalStorage, Pick<SharedStateStorage, 'updateBucket' | 'rememberNonce'> {
  readonly agents = new Map<string, AgentRecord>();
  readonly grants = new Map<string, GrantRecord>();
  readonly owners = new Map<string, OwnerRecord>();
  readonly approvals = new Map<string, ApprovalRecord>();
  readonly buckets = new Map<string, BucketState>();
  readonly nonces = new Map<string, number>();

  // Agents and grants.

  async createAgent(agent: AgentRecord): Promise<void> {
    if (byIdOrName(this.agents.values(), agent.name)) throw new AivaultError('AGENT_ALREADY_EXISTS', `an agent named ${agent.name} already exists`);
    this.agents.set(agent.id, copy(agent));
  }

  async listAgents(): Promise<AgentRecord[]> {
    return [...this.agents.values()].sort((a, b) => a.name.localeCompare(b.name)).map(copy);
  }

  async getAgent(idOrName: string): Promise<AgentRecord | undefined> {
    return copy(byIdOrName(this.agents.values(), idOrName));
  }

  async findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined> {
    return copy([...this.agents.values()].find((a) => a.tokenHash === hash));
  }

  async revokeAgent(id: string, at: string): Promise<boolean> {
    const agent = this.agents.get(id);
    if (agent?.status !== 'active') return false;
    this.agents.set(id, { ...agent, status: 'revoked', revokedAt: at });
    return true;
  }

  async setAgentContext(id: string, context: string | null): Promise<boolean> {
    const agent = this.agents.get(id);
    if (!agent) return false;
    this.agents.set(id, { ...agent, context });
    return true;
  }

  async putGrants(grants: readonly GrantRecord[]): Promise<void> {
    for (const grant of grants) this.grants.set(`${grant.agentId} ${grant.capability}`, copy(grant));
  }

  async getGrant(agentId: string, capability: string): Promise<GrantRecord | undefined> {
    return copy(this.grants.get(`${agentId} ${capability}`));
  }

  async listGrants(agentId?: string): Promise<GrantRecord[]> {
    return [...this.grants.values()].filter((g) => agentId === undefined || g.agentId === agentId).map(copy);
  }

  async deleteGrants(agentId: string, capabilities: readonly string[]): Promise<number> {
    return capabilities.filter((c) => this.grants.delete(`${agentId} ${c}`)).length;
  }

  async markGrantApproved(agentId: string, capability: string, at: string): Promise<boolean> {
    const grant = this.grants.get(`${agentId} ${capability}`);
    if (!grant || grant.firstApprovedAt !== null) return false;
    grant.firstApprovedAt = at;
    return true;
  }

  // Owners.

  async listOwners(): Promise<OwnerRecord[]> {
    return [...this.owners.values()].map(copy);
  }

  async getOwner(idOrName: string): Promise<OwnerRecord | undefined> {
    return copy(byIdOrName(this.owners.values(), idOrName));
  }

  async addOwner(owner: OwnerRecord): Promise<void> {
    if (byIdOrName(this.owners.values(), owner.name)) throw new AivaultError('OWNER_ALREADY_EXISTS', `an owner named ${owner.name} already exists`);
    this.owners.set(owner.id, copy(owner));
  }

  async removeOwner(id: string): Promise<boolean> {
    if (this.owners.size <= 1 && this.owners.has(id)) throw new AivaultError('LAST_OWNER', 'the last owner cannot be removed; add another owner first');
    return this.owners.delete(id);
  }

  // Approvals.

  async putApproval(approval: ApprovalRecord): Promise<void> {
    this.approvals.set(approval.id, copy(approval));
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    return copy(this.approvals.get(id));
  }

  async listApprovals(status?: ApprovalStatus): Promise<ApprovalRecord[]> {
    return [...this.approvals.values()].filter((a) => status === undefined || a.status === status).map(copy);
  }

  async decideApproval(id: string, status: Exclude<ApprovalStatus, 'pending'>, by: string, at: string): Promise<boolean> {
    const approval = this.approvals.get(id);
    if (approval?.status !== 'pending') return false;
    this.approvals.set(id, { ...approval, status, decidedBy: by, decidedAt: at });
    return true;
  }

  // Rate buckets and nonces: each step runs alone, as in an engine's transaction.

  async updateBucket<T>(key: string, step: (state: BucketState | undefined) => { state: BucketState; result: T }): Promise<T> {
    const { state, result } = step(copy(this.buckets.get(key)));
    this.buckets.set(key, copy(state));
    return result;
  }

  async rememberNonce(key: string, expiresAt: number, now: number): Promise<boolean> {
    if ((this.nonces.get(key) ?? -Infinity) > now) return false;
    this.nonces.set(key, expiresAt);
    return true;
  }
}

/** One audit record as written: an owner change's (with how it ended) or an appended one. */
export interface RecordedAudit {
  draft: ChangeDraft | AuditDraft;
  /** For an owner change: 'ok', or the code it failed with; undefined while it runs. */
  ended?: string;
}

/** An audit that keeps its records in `records`; as Vault.audited, a change's record comes first. */
export function recordingAudit(): { audited: AuditedChange; audit: AuditAppender; records: RecordedAudit[] } {
  const records: RecordedAudit[] = [];
  const audited: AuditedChange = async (draft, change) => {
    const batch: RecordedAudit[] = (Array.isArray(draft) ? draft : [draft]).map((d: ChangeDraft) => ({ draft: copy(d) }));
    records.push(...batch);
    try {
      const result = await change();
      for (const record of batch) record.ended = 'ok';
      return result;
    } catch (err) {
      for (const record of batch) record.ended = err instanceof AivaultError ? err.code : 'INTERNAL_ERROR';
      throw err;
    }
  };
  const audit: AuditAppender = {
    append: async (draft) => records.push({ draft: copy(draft) }),
  };
  return { audited, audit, records };
}

/** A clock the test moves: `now()` for the module, `set`/`advance` for the test. */
export function manualClock(start = Date.parse('2026-11-30T12:00:00.000Z')): { now: () => number; set: (t: number) => void; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, set: (to) => void (t = to), advance: (ms) => void (t += ms) };
}
