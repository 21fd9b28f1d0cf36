// Agent identities and their grants. An agent token is 256 random bits shown once and
// stored only as its SHA-256 (a token is looked up by hash, never compared as text).
// Everything here is an owner decision, audited; nothing an agent sends can widen a grant.

import { hash, randomBytes, randomUUID } from 'node:crypto';
import { AivaultError, RetryLaterError } from '../errors.ts';
import type { AgentRecord, AgentStorage, GrantRecord } from '../storage/types.ts';
import type { Snapshot } from '../storage/generation-cache.ts';
import { GLOBAL_SCOPE, assertScope } from '../vault/scopes.ts';
import type { AuditAppender, AuditedChange } from './audited.ts';
import { covers, grantTarget, providerOf } from './grant-targets.ts';
import { ed25519PublicKey } from './owners.ts';
import { parseRate, type Rate, type RateLimiter } from './rate-limit.ts';
import { assertSignedHead, signerOf, verifySignedRequest, type BodyReader, type ReplayGuard, type SignableRequest } from './request-signature.ts';

export const AGENT_TOKEN_PREFIX = 'avt_';
const AGENT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function hashToken(token: string): string {
  // One-shot: no Hash object per request.
  return hash('sha256', token, 'hex');
}

/** The last instant a Date can hold (ms since the epoch). */
const MAX_DATE_MS = 8.64e15;

/** `1h`, `30m`, `7d` from now, or an ISO date; either must be later than now. */
export function parseExpiry(text: string, now = Date.now()): string {
  const rel = /^(\d+)([smhd])$/.exec(text);
  const t = rel ? now + Number(rel[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's'] : Date.parse(text);
  if (!(t <= MAX_DATE_MS)) throw new AivaultError('INVALID_ARGUMENT', 'expires takes a duration (30m, 1h, 7d) or an ISO date', { field: 'expires' });
  if (t <= now) throw new AivaultError('INVALID_ARGUMENT', 'expires is in the past', { field: 'expires' });
  return new Date(t).toISOString();
}

/** What a grant allows beside its capability and methods: the same for every capability of one `grant`. */
export interface GrantTerms {
  expiresAt?: string | null;
  rate?: string | null;
  approve?: string | null;
}

export interface GrantInput extends GrantTerms {
  agent: string;
  capability: string;
  methods?: readonly string[] | null;
}

/** One capability of a grant: the methods it has, and the subset granted (none or empty: all of them). */
export interface GrantItem {
  capability: string;
  capabilityMethods: readonly string[];
  methods?: readonly string[] | null;
}

/** A method subset as stored: trimmed, upper-case, each once; null (all methods) when empty or absent. */
export function normaliseMethods(methods: readonly string[] | null | undefined): string[] | null {
  return methods?.length ? [...new Set(methods.map((m) => m.trim().toUpperCase()))] : null;
}

function grantDraft(agentId: string, capability: string) {
  return { action: 'grant.create', target: `agent:${agentId} capability:${capability}` };
}

/** An agent's stored context: null for global, else a checked workspace or group scope. */
function agentContext(scope: string | undefined): string | null {
  if (scope === undefined || scope === GLOBAL_SCOPE) return null;
  assertScope(scope);
  return scope;
}

/** A revoked agent's use of its credential is recorded at most this often (a leaked token could flood the log). */
const REVOKED_AUDIT_MS = 60_000;

/** What Agents works with (a Vault has all of it). */
export interface AgentsDeps {
  storage: AgentStorage;
  audited: AuditedChange;
  /** Where a revoked agent's use of its credential is recorded. */
  audit: AuditAppender;
  /** The clock, in ms since the epoch: grant expiry, timestamps. */
  now?: () => number;
}

export class Agents {
  // Called through the object handed in, so a Vault's own methods keep their `this`.
  readonly #deps: AgentsDeps;
  readonly #storage: AgentStorage;
  readonly #now: () => number;
  readonly #revokedSeen = new Map<string, number>();

  constructor(deps: AgentsDeps) {
    this.#deps = deps;
    this.#storage = deps.storage;
    this.#now = deps.now ?? Date.now;
  }

  /** A hot-path read, memoised in `at` (the request's snapshot) when there is one; nothing unknown is kept. */
  #read<T>(at: Snapshot | undefined, key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    return at ? at.memo(key, load, (v) => v !== undefined) : load();
  }

  #agent(idOrName: string, at: Snapshot | undefined): Promise<AgentRecord | undefined> {
    return this.#read(at, `agent ${idOrName}`, () => this.#storage.getAgent(idOrName));
  }

  #isoNow(): string {
    return new Date(this.#now()).toISOString();
  }

  async create(name: string, options: { publicKey?: string; context?: string } = {}): Promise<{ agent: AgentRecord; token?: string }> {
    if (!AGENT_NAME.test(name)) throw new AivaultError('INVALID_ARGUMENT', 'an agent name is 1-64 lower-case letters, digits, ".", "_" or "-"');
    const context = agentContext(options.context);
    const publicKey = options.publicKey === undefined ? null : ed25519PublicKey(options.publicKey);
    const token = publicKey ? undefined : AGENT_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const agent: AgentRecord = {
      id: randomUUID(),
      name,
      tokenHash: token ? hashToken(token) : null,
      publicKey,
      status: 'active',
      context,
      createdAt: this.#isoNow(),
      revokedAt: null,
    };
    await this.#deps.audited({ action: 'agent.create', target: `agent:${agent.id}` }, () => this.#storage.createAgent(agent));
    return token ? { agent, token } : { agent };
  }

  list(): Promise<AgentRecord[]> {
    return this.#storage.listAgents();
  }

  async get(idOrName: string): Promise<AgentRecord> {
    const agent = await this.#storage.getAgent(idOrName);
    if (!agent) throw new AivaultError('AGENT_NOT_FOUND', `no agent ${idOrName}`);
    return agent;
  }

  /** Binds the agent to a workspace or group (or back to global); the agent cannot choose it. */
  async setContext(idOrName: string, scope: string | undefined): Promise<AgentRecord> {
    const agent = await this.get(idOrName);
    const context = agentContext(scope);
    await this.#deps.audited({ action: 'agent.context', target: `agent:${agent.id} ${context ?? GLOBAL_SCOPE}` }, async () => {
      if (!(await this.#storage.setAgentContext(agent.id, context))) throw new AivaultError('AGENT_NOT_FOUND', `no agent ${idOrName}`);
    });
    return { ...agent, context };
  }

  async revoke(idOrName: string): Promise<AgentRecord> {
    const agent = await this.get(idOrName);
    await this.#deps.audited({ action: 'agent.revoke', target: `agent:${agent.id}` }, async () => {
      if (!(await this.#storage.revokeAgent(agent.id, this.#isoNow()))) throw new AivaultError('AGENT_REVOKED', `${agent.name} is already revoked`);
    });
    return this.get(agent.id);
  }

  /** The active agent holding `token`; a revoked or unknown token is refused. */
  async authenticate(token: string | undefined, at?: Snapshot): Promise<AgentRecord> {
    if (!token || !token.startsWith(AGENT_TOKEN_PREFIX) || token.length > 128) {
      throw new AivaultError('AGENT_UNAUTHENTICATED', 'no valid agent token (Authorization: Bearer avt_…)');
    }
    const hash = hashToken(token);
    const agent = await this.#read(at, `token ${hash}`, () => this.#storage.findAgentByTokenHash(hash));
    if (!agent) throw new AivaultError('AGENT_UNAUTHENTICATED', 'the agent token is not known');
    if (agent.status !== 'active') return this.#revoked(agent, new AivaultError('AGENT_UNAUTHENTICATED', 'the agent token is not known'));
    return agent;
  }

  /**
   * The active agent that signed `req` (Ed25519), and the body it signed: the signer, its status
   * and the timestamp are checked before `readBody` is called, then the signature and the nonce.
   */
  async authenticateSigned(req: Omit<SignableRequest, 'body'>, readBody: BodyReader, guard: ReplayGuard, at?: Snapshot): Promise<{ agent: AgentRecord; body: Buffer | undefined }> {
    const signer = signerOf(req);
    const agent = signer ? await this.#agent(signer, at) : undefined;
    if (!agent?.publicKey) throw new AivaultError('SIGNATURE_INVALID', 'the signer is not an agent with a registered public key');
    assertSignedHead(req.headers, this.#now());
    // A revoked signer is refused from the headers: nobody makes the daemon read a body for it.
    if (agent.status !== 'active') return this.#revoked(agent, new AivaultError('SIGNATURE_INVALID', 'the signer is not an agent with a registered public key'));
    const body = await readBody();
    await verifySignedRequest({ ...req, body }, agent.publicKey, guard, this.#now());
    return { agent, body };
  }

  /**
   * A revoked agent's credential gets the answer an unknown one gets (whoever holds a leaked
   * token must not learn it was once valid); the audit log keeps the difference.
   */
  async #revoked(agent: AgentRecord, answer: AivaultError): Promise<never> {
    const now = this.#now();
    if ((this.#revokedSeen.get(agent.id) ?? 0) + REVOKED_AUDIT_MS <= now) {
      this.#revokedSeen.set(agent.id, now);
      await this.#deps.audit.append({ actor: `agent:${agent.id}`, action: 'agent.authenticate', decision: 'deny', reason: 'AGENT_REVOKED' });
    }
    throw answer;
  }

  async grant(input: GrantInput, capabilityMethods: readonly string[]): Promise<GrantRecord> {
    const [grant] = await this.grantEach(input.agent, [{ capability: input.capability, capabilityMethods, methods: input.methods ?? null }], input);
    return grant!;
  }

  /**
   * Grants each of `items` to the agent on the same terms, all or none: everything is checked
   * before anything is written, then one audit record per grant and one transaction. A grant
   * the agent already holds for a capability is replaced.
   */
  async grantEach(agentRef: string, items: readonly GrantItem[], terms: GrantTerms): Promise<GrantRecord[]> {
    const agent = await this.get(agentRef);
    if (agent.status !== 'active') throw new AivaultError('AGENT_REVOKED', `${agent.name} is revoked`);
    let rate: Rate | null = null;
    if (terms.rate) {
      rate = parseRate(terms.rate) ?? null;
      if (!rate) throw new AivaultError('INVALID_ARGUMENT', 'rate takes COUNT/UNIT, e.g. 60/min, 10/s, 1000/hour', { field: 'rate' });
    }
    const approve = terms.approve ?? null;
    if (approve !== null && approve !== 'each' && approve !== 'first') throw new AivaultError('INVALID_ARGUMENT', 'approve takes each or first', { field: 'approve' });
    const createdAt = this.#isoNow();
    const grants = items.map((item): GrantRecord => {
      const methods = normaliseMethods(item.methods);
      for (const m of methods ?? []) {
        if (!item.capabilityMethods.includes(m)) throw new AivaultError('INVALID_ARGUMENT', `${m} is not among ${item.capability}'s methods (${item.capabilityMethods.join(', ')})`);
      }
      return { agentId: agent.id, capability: item.capability, methods, rate, expiresAt: terms.expiresAt ?? null, createdAt, approve, firstApprovedAt: null };
    });
    if (grants.length > 0) await this.#deps.audited(grants.map((g) => grantDraft(agent.id, g.capability)), () => this.#storage.putGrants(grants));
    return grants;
  }

  /**
   * A derived agent (`aivault run`): a new token holding `source`'s grants on a lease. Each
   * grant ends at `until` or at the source grant's own end, whichever is first; `renewLease`
   * moves `until` on while the holder lives, so a holder that dies leaves it usable for one
   * lease at most. The derived agent works in the source's context, never a wider one.
   */
  async derive(source: AgentRecord, name: string, until: string): Promise<{ agent: AgentRecord; token: string }> {
    if (source.status !== 'active') throw new AivaultError('AGENT_REVOKED', `${source.name} is revoked`);
    const derived = await this.create(name, source.context === null ? {} : { context: source.context });
    try {
      const kept = { createdAt: this.#isoNow(), firstApprovedAt: null };
      const grants = (await this.#storage.listGrants(source.id)).map((g) => leased(g, derived.agent.id, until, kept));
      if (grants.length > 0) await this.#deps.audited(grants.map((g) => grantDraft(derived.agent.id, g.capability)), () => this.#storage.putGrants(grants));
    } catch (err) {
      await this.revoke(derived.agent.id).catch(() => {});
      throw err;
    }
    return { agent: derived.agent, token: derived.token! };
  }

  /**
   * Moves a derived agent's lease on to `until`. Each grant it still holds takes its source
   * grant's current terms (a narrowed source narrows it); one its source no longer holds is
   * removed; none is added. False, with nothing renewed, once either agent is revoked.
   */
  async renewLease(source: AgentRecord, derived: AgentRecord, until: string): Promise<boolean> {
    const [from, to] = await Promise.all([this.#storage.getAgent(source.id), this.#storage.getAgent(derived.id)]);
    if (from?.status !== 'active' || to?.status !== 'active') return false;
    const current = new Map((await this.#storage.listGrants(source.id)).map((g) => [g.capability, g]));
    await this.#deps.audited({ action: 'grant.renew', target: `agent:${derived.id} until:${until}` }, async () => {
      for (const held of await this.#storage.listGrants(derived.id)) {
        const g = current.get(held.capability);
        if (g) await this.#storage.putGrants([leased(g, derived.id, until, held)]);
        else await this.#storage.deleteGrants(derived.id, [held.capability]);
      }
    });
    return true;
  }

  async listGrants(agent?: string): Promise<GrantRecord[]> {
    return this.#storage.listGrants(agent ? (await this.get(agent)).id : undefined);
  }

  async revokeGrant(agentRef: string, capability: string): Promise<void> {
    await this.revokeGrants(agentRef, [capability]);
  }

  /**
   * Takes back the agent's grants for `targets` (capability ids, or PROVIDER/*: every grant
   * it holds whose id is PROVIDER/…, however it was granted), all or none: a target it holds
   * nothing for is GRANT_NOT_FOUND, with nothing revoked. One audit record per grant.
   */
  async revokeGrants(agentRef: string, targets: readonly string[]): Promise<{ agent: AgentRecord; revoked: string[] }> {
    const agent = await this.get(agentRef);
    const held = (await this.#storage.listGrants(agent.id)).map((g) => g.capability);
    const revoked = new Set<string>();
    for (const text of targets) {
      const target = grantTarget(text);
      const hit = held.filter((id) => covers(target, { id, provider: providerOf(id) }));
      if (hit.length === 0) throw new AivaultError('GRANT_NOT_FOUND', `${agent.name} has no grant for ${text.slice(0, 130)}`);
      for (const id of hit) revoked.add(id);
    }
    const ids = [...revoked];
    await this.#deps.audited(
      ids.map((id) => ({ action: 'grant.revoke', target: `agent:${agent.id} capability:${id}` })),
      () => this.#storage.deleteGrants(agent.id, ids),
    );
    return { agent, revoked: ids };
  }

  /**
   * Whether `agent` may invoke `capability` with `method` now. Read fresh on every request,
   * so a revocation or an expired grant applies to the very next one.
   */
  async authorize(agent: AgentRecord, capability: string, method: string, limiter: RateLimiter, at?: Snapshot): Promise<GrantRecord> {
    const grant = await this.grantInForce(agent, capability, method, at);
    if (grant.rate) {
      const decision = await limiter.take(`${agent.id} ${capability}`, grant.rate);
      if (!decision.allowed) throw new RateLimitedError(decision.retryAfter);
    }
    return grant;
  }

  /** The grant under which `agent` may use `capability` with `method` now: the agent active, the grant there, unexpired, allowing the method. */
  async grantInForce(agent: AgentRecord, capability: string, method: string, at?: Snapshot): Promise<GrantRecord> {
    const current = await this.#agent(agent.id, at);
    if (!current || current.status !== 'active') throw new AivaultError('AGENT_REVOKED', 'this agent has been revoked');
    const grant = await this.#read(at, `grant ${agent.id} ${capability}`, () => this.#storage.getGrant(agent.id, capability));
    if (!grant) throw new AivaultError('CAPABILITY_NOT_GRANTED', `this agent has no grant for ${capability.slice(0, 130)}`);
    if (grantExpired(grant, this.#now())) throw new AivaultError('GRANT_EXPIRED', `the grant for ${capability} expired at ${grant.expiresAt}`);
    if (grant.methods !== null && !grant.methods.includes(method)) {
      throw new AivaultError('METHOD_NOT_ALLOWED', `the grant allows ${grant.methods.join(', ')} for ${capability}`);
    }
    return grant;
  }
}

/** Whether `grant` has ended by `now`; an end that does not parse counts as ended (fail closed). */
export function grantExpired(grant: Pick<GrantRecord, 'expiresAt'>, now: number): boolean {
  return grant.expiresAt !== null && !(Date.parse(grant.expiresAt) > now);
}

/** `grant` for agent `to`, ending at `until` or at its own end, whichever is first. */
function leased(grant: GrantRecord, to: string, until: string, kept: Pick<GrantRecord, 'createdAt' | 'firstApprovedAt'>): GrantRecord {
  const expiresAt = grant.expiresAt !== null && Date.parse(grant.expiresAt) < Date.parse(until) ? grant.expiresAt : until;
  return { ...grant, agentId: to, expiresAt, createdAt: kept.createdAt, firstApprovedAt: kept.firstApprovedAt };
}

export class RateLimitedError extends RetryLaterError {
  constructor(retryAfter: number) {
    super('RATE_LIMITED', `rate limit reached; retry in ${retryAfter} s`, retryAfter);
  }
}
