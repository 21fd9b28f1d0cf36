// Owner approvals against in-memory storage, a recording audit and a clock the test moves:
// an invoke waits until the owner decides, each approval is decided once, an undecided one
// expires, and `approve: first` lets later invokes through once the first was approved.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runAs } from '../../src/audit/actor.ts';
import { isAivaultError, type ErrorCode } from '../../src/errors.ts';
import { Approvals, MAX_APPROVAL_TIMEOUT_MS, type ApprovalRequest } from '../../src/policy/approvals.ts';
import type { AgentRecord, ApprovalRecord, GrantRecord } from '../../src/storage/types.ts';
import { manualClock, MemoryStorage, recordingAudit } from '../helpers/memory-storage.ts';

const code = (c: ErrorCode) => (e: unknown) => isAivaultError(e, c);
const TIMEOUT_MS = 60_000;

const agent: AgentRecord = { id: 'agent-1', name: 'bot', tokenHash: null, publicKey: null, status: 'active', context: null, createdAt: '2026-11-30T00:00:00.000Z', revokedAt: null };
const request = (digest = 'ab'.repeat(32)): ApprovalRequest => ({
  capability: 'p/pay',
  method: 'POST',
  host: 'api.example.com',
  path: '/v1/pay',
  details: { agentName: 'bot', url: 'https://api.example.com/v1/pay', headers: [['content-type', 'application/json']], body: null, digest },
});

async function setup(approve: GrantRecord['approve'] = 'each') {
  const storage = new MemoryStorage();
  const { audited, records } = recordingAudit();
  const clock = manualClock();
  const notified: ApprovalRecord[] = [];
  const approvals = new Approvals({ storage, audited, now: clock.now });
  approvals.configure({ timeoutMs: TIMEOUT_MS, pollMs: 1, notify: (a) => notified.push(a) });
  const grant: GrantRecord = { agentId: agent.id, capability: 'p/pay', methods: null, rate: null, expiresAt: null, createdAt: '2026-11-30T00:00:00.000Z', approve, firstApprovedAt: null };
  await storage.putGrants([grant]);
  /** Resolves once `n` approvals are pending (the waiters have stored theirs). */
  const pending = async (n = 1): Promise<ApprovalRecord[]> => {
    for (;;) {
      const found = await storage.listApprovals('pending');
      if (found.length >= n) return found;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  };
  return { storage, records, clock, notified, approvals, grant, pending };
}

/** A short real wait, for the waiters to poll a few times. */
const polls = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('approvals: when an invoke waits', () => {
  it('only under a grant that asks for it: each, or first until the first is approved', async () => {
    const { approvals, grant, storage } = await setup();
    assert.equal(approvals.needed({ ...grant, approve: null }), false);
    assert.equal(approvals.needed({ ...grant, approve: 'each' }), true);
    assert.equal(approvals.needed({ ...grant, approve: 'each', firstApprovedAt: '2026-11-30T00:00:00.000Z' }), true);
    assert.equal(approvals.needed({ ...grant, approve: 'first' }), true);
    assert.equal(approvals.needed({ ...grant, approve: 'first', firstApprovedAt: '2026-11-30T00:00:00.000Z' }), false);
    assert.equal(await approvals.await(agent, { ...grant, approve: null }, request()), null);
    assert.equal(storage.approvals.size, 0, 'nothing asked of the owner');
  });

  it('a timeout is 1 s to 30 min', async () => {
    const { approvals } = await setup();
    for (const timeoutMs of [0, 999, MAX_APPROVAL_TIMEOUT_MS + 1, Number.NaN]) assert.throws(() => approvals.configure({ timeoutMs }), code('INVALID_ARGUMENT'), String(timeoutMs));
    approvals.configure({ timeoutMs: 1000 });
    approvals.configure({ timeoutMs: MAX_APPROVAL_TIMEOUT_MS });
  });
});

describe('approvals: the owner decides', () => {
  it('pending, then approved: the waiter gets the approval; the decision is audited with who made it', async () => {
    const { approvals, grant, pending, notified, records, clock } = await setup();
    const waiting = approvals.await(agent, grant, request());
    const [shown] = await pending();
    assert.deepEqual(notified, [shown], 'the owner is told of it once');
    assert.deepEqual([shown!.status, shown!.agentId, shown!.capability, shown!.expiresAt], ['pending', agent.id, 'p/pay', new Date(clock.now() + TIMEOUT_MS).toISOString()]);
    const decided = await runAs('owner:alice', () => approvals.decide(shown!.id, 'approve'));
    assert.deepEqual([decided.status, decided.decidedBy], ['approved', 'owner:alice']);
    assert.deepEqual(await waiting, decided);
    assert.deepEqual(records.map((r) => [r.draft.action, r.draft.target, r.ended]), [['approval.approve', `approval:${shown!.id} agent:${agent.id} capability:p/pay`, 'ok']]);
  });

  it('pending, then denied: the waiter is refused with APPROVAL_DENIED', async () => {
    const { approvals, grant, pending } = await setup();
    const waiting = approvals.await(agent, grant, request());
    const [shown] = await pending();
    assert.equal((await approvals.decide(shown!.id, 'deny')).decidedBy, 'owner:local');
    await assert.rejects(waiting, code('APPROVAL_DENIED'));
  });

  it('deciding twice is refused with APPROVAL_NOT_PENDING (and audited as failed); an unknown id with APPROVAL_NOT_FOUND', async () => {
    const { approvals, grant, pending, records } = await setup();
    const waiting = approvals.await(agent, grant, request());
    const [shown] = await pending();
    await approvals.decide(shown!.id, 'deny');
    await assert.rejects(approvals.decide(shown!.id, 'approve'), code('APPROVAL_NOT_PENDING'));
    await assert.rejects(waiting, code('APPROVAL_DENIED'));
    assert.deepEqual(records.map((r) => [r.draft.action, r.ended]), [['approval.deny', 'ok'], ['approval.approve', 'APPROVAL_NOT_PENDING']]);
    await assert.rejects(approvals.decide('apr_nope', 'approve'), code('APPROVAL_NOT_FOUND'));
  });

  it('an approval of another request than the one waiting sends nothing', async () => {
    const { approvals, grant, pending, storage } = await setup();
    const waiting = approvals.await(agent, grant, request('ab'.repeat(32)));
    const [shown] = await pending();
    // What the owner saw (as stored) is not what waits here.
    const stored = storage.approvals.get(shown!.id)!;
    stored.details = { ...stored.details!, digest: 'cd'.repeat(32) };
    await approvals.decide(shown!.id, 'approve');
    await assert.rejects(waiting, code('APPROVAL_DENIED'));
  });
});

describe('approvals: expiry', () => {
  it('undecided until the deadline: expired, APPROVAL_TIMEOUT, and no longer open to a decision', async () => {
    const { approvals, grant, pending, clock, storage } = await setup();
    const waiting = approvals.await(agent, grant, request());
    let settled = false;
    void waiting.catch(() => {}).finally(() => (settled = true));
    const [shown] = await pending();
    clock.advance(TIMEOUT_MS - 1);
    await polls();
    assert.equal(settled, false, 'still waiting 1 ms before the deadline');
    clock.advance(1);
    await assert.rejects(waiting, code('APPROVAL_TIMEOUT'));
    assert.deepEqual([storage.approvals.get(shown!.id)!.status, storage.approvals.get(shown!.id)!.decidedBy], ['expired', 'aivault']);
    await assert.rejects(approvals.decide(shown!.id, 'approve'), code('APPROVAL_NOT_PENDING'));
  });

  it('an owner decision landing in the last instant is taken, not overwritten by the expiry', async () => {
    const { approvals, grant, pending, clock, storage } = await setup();
    const decideApproval = storage.decideApproval.bind(storage);
    storage.decideApproval = async (id, status, by, at) => {
      if (status === 'expired') await decideApproval(id, 'approved', 'owner:local', at);
      return decideApproval(id, status, by, at);
    };
    const waiting = approvals.await(agent, grant, request());
    await pending();
    clock.advance(TIMEOUT_MS);
    assert.equal((await waiting)?.status, 'approved');
  });

  it('the agent going away ends the wait, and the approval with it', async () => {
    const { approvals, grant, pending, storage } = await setup();
    const gone = new AbortController();
    const waiting = approvals.await(agent, grant, request(), gone.signal);
    const [shown] = await pending();
    gone.abort();
    await assert.rejects(waiting, code('APPROVAL_TIMEOUT'));
    assert.equal(storage.approvals.get(shown!.id)!.status, 'expired');
  });

  it('an approval expired by someone else ends the wait at once, not at (or past) the deadline', { timeout: 5000 }, async () => {
    const { approvals, grant, pending, storage } = await setup();
    const waiting = approvals.await(agent, grant, request());
    const [shown] = await pending();
    await storage.decideApproval(shown!.id, 'expired', 'aivault', new Date().toISOString());
    await assert.rejects(waiting, code('APPROVAL_TIMEOUT'));
  });
});

describe('approvals: approve first', () => {
  it('the first approval marks the grant once, and covers invokes already waiting', async () => {
    const { approvals, grant, pending, storage } = await setup('first');
    const first = approvals.await(agent, grant, request());
    const second = approvals.await(agent, grant, request('ef'.repeat(32)));
    const [a, b] = await pending(2);
    const approved = await approvals.decide(a!.id, 'approve');
    const results = await Promise.all([first, second]);
    const marked = (await storage.getGrant(agent.id, 'p/pay'))!;
    assert.equal(marked.firstApprovedAt, approved.decidedAt);
    assert.equal(approvals.needed(marked), false, 'later invokes do not wait');
    const covered = results.find((r) => r!.id === b!.id)!;
    assert.deepEqual([covered.status, covered.decidedBy], ['approved', 'grant:first-approved']);
    // A later approval does not move the mark.
    const third = approvals.await(agent, { ...marked, firstApprovedAt: null }, request());
    await assert.doesNotReject(third);
    assert.equal((await storage.getGrant(agent.id, 'p/pay'))!.firstApprovedAt, approved.decidedAt);
  });

  it('a waiter the owner denied is refused, even when another invoke was approved first meanwhile', async () => {
    const { approvals, grant, storage } = await setup('first');
    const getGrant = storage.getGrant.bind(storage);
    let race = true;
    // Between the waiter's read of its approval and its read of the grant: another invoke's
    // approval marks the grant, and the owner denies this one.
    storage.getGrant = async (agentId, capability) => {
      if (race) {
        race = false;
        const [mine] = await storage.listApprovals('pending');
        await storage.markGrantApproved(agentId, capability, new Date().toISOString());
        await storage.decideApproval(mine!.id, 'denied', 'owner:local', new Date().toISOString());
      }
      return getGrant(agentId, capability);
    };
    const waiting = approvals.await(agent, grant, request());
    await assert.rejects(waiting, code('APPROVAL_DENIED'));
    assert.equal((await storage.listApprovals())[0]!.status, 'denied');
  });
});
