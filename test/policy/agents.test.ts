// Agents and their grants, against in-memory storage, a recording audit and a clock the test
// moves: who is let in, what a grant allows and until when, at what rate, in which context.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAivaultError, type ErrorCode } from '../../src/errors.ts';
import { AGENT_TOKEN_PREFIX, Agents, RateLimitedError, hashToken, parseExpiry } from '../../src/policy/agents.ts';
import { parseRate, RateLimiter } from '../../src/policy/rate-limit.ts';
import { ReplayGuard, signRequest } from '../../src/policy/request-signature.ts';
import { manualClock, MemoryStorage, recordingAudit } from '../helpers/memory-storage.ts';

const SEED = Number(process.env.POLICY_SEED ?? 20261130);
const params = { numRuns: Number(process.env.POLICY_RUNS ?? 200), seed: SEED, endOnFailure: true };

const code = (c: ErrorCode) => (e: unknown) => isAivaultError(e, c);
const CAP_METHODS = ['GET', 'POST', 'DELETE'] as const;

function setup() {
  const storage = new MemoryStorage();
  const { audited, audit, records } = recordingAudit();
  const clock = manualClock();
  const agents = new Agents({ storage, audited, audit, now: clock.now });
  const limiter = new RateLimiter(storage, clock.now);
  return { storage, records, clock, agents, limiter };
}

describe('agent identities', () => {
  it('a token is shown once, stored only as its hash, and lets its agent in', async () => {
    const { storage, records, agents } = setup();
    const { agent, token } = await agents.create('bot');
    assert.ok(token?.startsWith(AGENT_TOKEN_PREFIX));
    assert.equal(agent.tokenHash, hashToken(token!));
    assert.ok(!JSON.stringify([...storage.agents.values(), records]).includes(token!), 'the token itself is nowhere stored or audited');
    assert.deepEqual(records.map((r) => [r.draft.action, r.ended]), [['agent.create', 'ok']]);
    assert.equal((await agents.authenticate(token)).id, agent.id);
  });

  it('refuses a missing, malformed, overlong or unknown token alike', async () => {
    const { agents } = setup();
    await agents.create('bot');
    for (const token of [undefined, '', 'Bearer x', 'avx_abc', `${AGENT_TOKEN_PREFIX}${'a'.repeat(200)}`, `${AGENT_TOKEN_PREFIX}unknown`]) {
      await assert.rejects(agents.authenticate(token), code('AGENT_UNAUTHENTICATED'), String(token));
    }
  });

  it('refuses bad names and a taken name, and changes nothing', async () => {
    const { storage, agents } = setup();
    for (const name of ['', 'Bot', '-bot', 'bot!', 'a'.repeat(65), 'b ot']) await assert.rejects(agents.create(name), code('INVALID_ARGUMENT'), name);
    await agents.create('bot');
    await assert.rejects(agents.create('bot'), code('AGENT_ALREADY_EXISTS'));
    assert.equal(storage.agents.size, 1);
  });

  it('an agent with a public key gets no token; anything but an Ed25519 public key is refused', async () => {
    const { agents } = setup();
    const pem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const made = await agents.create('signer', { publicKey: pem });
    assert.equal(made.token, undefined);
    assert.equal(made.agent.tokenHash, null);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await assert.rejects(agents.create('rsa', { publicKey: rsa }), code('INVALID_ARGUMENT'));
    await assert.rejects(agents.create('junk', { publicKey: 'not a key' }), code('INVALID_ARGUMENT'));
  });
});

describe('agent contexts', () => {
  it('global is stored as none; a workspace or group is kept; anything else is refused', async () => {
    const { agents } = setup();
    assert.equal((await agents.create('a', { context: 'global' })).agent.context, null);
    assert.equal((await agents.create('b', { context: 'workspace:w1' })).agent.context, 'workspace:w1');
    assert.equal((await agents.create('c', { context: 'group:w1/g1' })).agent.context, 'group:w1/g1');
    for (const context of ['workspace:', 'group:w1', 'Workspace:w1', 'workspace:w1/g1', 'tenant:x']) {
      await assert.rejects(agents.create('d', { context }), code('INVALID_SCOPE'), context);
    }
  });

  it('setContext binds and unbinds, audited; an unknown agent or bad scope is refused', async () => {
    const { agents, records } = setup();
    const { agent } = await agents.create('bot');
    assert.equal((await agents.setContext('bot', 'group:w1/g1')).context, 'group:w1/g1');
    assert.equal((await agents.get(agent.id)).context, 'group:w1/g1');
    assert.equal((await agents.setContext(agent.id, undefined)).context, null);
    assert.equal((await agents.get('bot')).context, null);
    await assert.rejects(agents.setContext('bot', 'group:/g'), code('INVALID_SCOPE'));
    await assert.rejects(agents.setContext('ghost', 'workspace:w1'), code('AGENT_NOT_FOUND'));
    assert.deepEqual(records.filter((r) => r.draft.action === 'agent.context').map((r) => r.draft.target), [`agent:${agent.id} group:w1/g1`, `agent:${agent.id} global`]);
  });
});

describe('revoked agents', () => {
  it('a revoked token gets the answer an unknown one gets; the audit tells them apart, at most once a minute', async () => {
    const { agents, records, clock } = setup();
    const { agent, token } = await agents.create('bot');
    await agents.revoke('bot');
    const unknown = await agents.authenticate(`${AGENT_TOKEN_PREFIX}unknown`).catch((e: unknown) => e);
    const revoked = await agents.authenticate(token).catch((e: unknown) => e);
    assert.deepEqual([(revoked as Error).message, (revoked as { code: string }).code], [(unknown as Error).message, (unknown as { code: string }).code]);
    const denials = () => records.filter((r) => r.draft.action === 'agent.authenticate');
    assert.equal(denials().length, 1);
    assert.deepEqual({ ...denials()[0]!.draft }, { actor: `agent:${agent.id}`, action: 'agent.authenticate', decision: 'deny', reason: 'AGENT_REVOKED' });
    clock.advance(59_999);
    await assert.rejects(agents.authenticate(token), code('AGENT_UNAUTHENTICATED'));
    assert.equal(denials().length, 1, 'a flood of attempts is one record per minute');
    clock.advance(1);
    await assert.rejects(agents.authenticate(token), code('AGENT_UNAUTHENTICATED'));
    assert.equal(denials().length, 2);
  });

  it('revoking twice is refused (and audited as failed); a revoked agent can be granted nothing and use nothing', async () => {
    const { agents, records, limiter } = setup();
    const { agent } = await agents.create('bot');
    await agents.grant({ agent: 'bot', capability: 'p/read' }, CAP_METHODS);
    const revoked = await agents.revoke('bot');
    assert.equal(revoked.status, 'revoked');
    assert.ok(revoked.revokedAt);
    await assert.rejects(agents.revoke('bot'), code('AGENT_REVOKED'));
    assert.deepEqual(records.filter((r) => r.draft.action === 'agent.revoke').map((r) => r.ended), ['ok', 'AGENT_REVOKED']);
    await assert.rejects(agents.grant({ agent: 'bot', capability: 'p/write' }, CAP_METHODS), code('AGENT_REVOKED'));
    // The caller's record may be stale: the grant check reads the agent afresh.
    await assert.rejects(agents.authorize(agent, 'p/read', 'GET', limiter), code('AGENT_REVOKED'));
  });

  it('a revoked signer is refused from its headers alone: its body is never read', async () => {
    const { agents, records, clock } = setup();
    const keys = generateKeyPairSync('ed25519');
    const { agent } = await agents.create('signer', { publicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    const guard = new ReplayGuard(new MemoryStorage());
    const body = Buffer.from('{"x":1}');
    const signed = (nonce: string) => ({ method: 'POST', target: '/v1/invoke', headers: signRequest({ method: 'POST', target: '/v1/invoke', headers: [], body }, agent.id, keys.privateKey, clock.now(), nonce) });
    let reads = 0;
    const readBody = async () => (reads++, body);
    const first = signed('n'.repeat(20));
    assert.equal((await agents.authenticateSigned(first, readBody, guard)).agent.id, agent.id);
    await assert.rejects(agents.authenticateSigned(first, readBody, guard), code('REPLAY_DETECTED'));
    await agents.revoke(agent.id);
    reads = 0;
    await assert.rejects(agents.authenticateSigned(signed('m'.repeat(20)), readBody, guard), code('SIGNATURE_INVALID'));
    assert.equal(reads, 0);
    assert.equal(records.filter((r) => r.draft.action === 'agent.authenticate').length, 1);
  });
});

describe('grants: expiry', () => {
  it('a grant is in force until the instant it expires, and refused with GRANT_EXPIRED from then on', async () => {
    const { agents, clock, limiter } = setup();
    const { agent } = await agents.create('bot');
    const expiresAt = new Date(clock.now() + 60_000).toISOString();
    await agents.grant({ agent: 'bot', capability: 'p/read', expiresAt }, CAP_METHODS);
    clock.advance(59_999);
    assert.equal((await agents.authorize(agent, 'p/read', 'GET', limiter)).expiresAt, expiresAt);
    clock.advance(1);
    await assert.rejects(agents.authorize(agent, 'p/read', 'GET', limiter), code('GRANT_EXPIRED'));
    clock.advance(86_400_000);
    await assert.rejects(agents.grantInForce(agent, 'p/read', 'GET'), code('GRANT_EXPIRED'));
  });

  it('a grant whose stored end does not parse is refused, not taken as never ending', async () => {
    const { agents, storage, limiter } = setup();
    const { agent } = await agents.create('bot');
    const grant = await agents.grant({ agent: 'bot', capability: 'p/read' }, CAP_METHODS);
    await storage.putGrants([{ ...grant, expiresAt: 'next tuesday' }]);
    await assert.rejects(agents.authorize(agent, 'p/read', 'GET', limiter), code('GRANT_EXPIRED'));
  });

  it('parseExpiry: a duration from now, or a future ISO date; the past and nonsense refused', () => {
    const now = Date.parse('2026-11-30T12:00:00.000Z');
    assert.equal(parseExpiry('30m', now), '2026-11-30T12:30:00.000Z');
    assert.equal(parseExpiry('1h', now), '2026-11-30T13:00:00.000Z');
    assert.equal(parseExpiry('7d', now), '2026-12-07T12:00:00.000Z');
    assert.equal(parseExpiry('45s', now), '2026-11-30T12:00:45.000Z');
    assert.equal(parseExpiry('2027-01-01T00:00:00Z', now), '2027-01-01T00:00:00.000Z');
    for (const text of ['', 'soon', '1w', '-1h', '1.5h', '2026-11-30T12:00:00Z', '2020-01-01']) {
      assert.throws(() => parseExpiry(text, now), code('INVALID_ARGUMENT'), text);
    }
  });

  it('parseExpiry: a zero duration is refused, not turned into a grant expired on arrival', () => {
    const now = Date.parse('2026-11-30T12:00:00.000Z');
    for (const text of ['0s', '0m', '0h', '0d', '000m']) assert.throws(() => parseExpiry(text, now), code('INVALID_ARGUMENT'), text);
  });

  it('parseExpiry: a duration past the last representable date is refused as an argument, not a crash', () => {
    for (const text of ['999999999d', '99999999999999h', `${'9'.repeat(400)}s`]) assert.throws(() => parseExpiry(text), code('INVALID_ARGUMENT'), text);
  });
});

describe('grants: methods', () => {
  const subset = fc.subarray([...CAP_METHODS, 'PUT', 'PATCH']);

  it("a grant's methods must be a subset of the capability's; a request outside them is refused", async () => {
    await fc.assert(
      fc.asyncProperty(subset, fc.constantFrom(...CAP_METHODS, 'PUT'), async (methods, method) => {
        const { agents, limiter } = setup();
        const { agent } = await agents.create('bot');
        const granted = await agents.grant({ agent: 'bot', capability: 'p/x', methods }, CAP_METHODS).then(
          (g) => g,
          (e: unknown) => (assert.ok(isAivaultError(e, 'INVALID_ARGUMENT')), undefined),
        );
        assert.equal(granted !== undefined, methods.every((m) => (CAP_METHODS as readonly string[]).includes(m)), 'granted exactly when a subset');
        if (!granted) return assert.equal((await agents.listGrants('bot')).length, 0);
        const allowed = methods.length === 0 || methods.includes(method);
        const outcome = await agents.authorize(agent, 'p/x', method, limiter).then(
          () => 'allowed',
          (e: unknown) => (isAivaultError(e, 'METHOD_NOT_ALLOWED') ? 'refused' : e),
        );
        assert.equal(outcome, allowed ? 'allowed' : 'refused');
      }),
      params,
    );
  });

  it('methods are trimmed, upper-cased and deduplicated; none given means all of the capability\'s', async () => {
    const { agents } = setup();
    await agents.create('bot');
    assert.deepEqual((await agents.grant({ agent: 'bot', capability: 'p/x', methods: [' get', 'GET', 'post '] }, CAP_METHODS)).methods, ['GET', 'POST']);
    assert.equal((await agents.grant({ agent: 'bot', capability: 'p/y', methods: [] }, CAP_METHODS)).methods, null);
    assert.equal((await agents.grant({ agent: 'bot', capability: 'p/z' }, CAP_METHODS)).methods, null);
  });
});

describe('grants: rates', () => {
  it('parses COUNT/UNIT and refuses anything else', () => {
    const cases: Array<[string, number, number]> = [['10/min', 10, 60_000], ['1/s', 1, 1000], ['60/m', 60, 60_000], [' 5/hour ', 5, 3_600_000], ['5000/day', 5000, 86_400_000], ['3/sec', 3, 1000]];
    for (const [text, count, periodMs] of cases) assert.deepEqual(parseRate(text), { count, periodMs }, text);
    for (const text of ['', '10', '/min', '0/min', '-1/s', '1.5/s', '10/MIN', '10 /min', '10/minutes', '1234567890/s', '10/min/s']) assert.equal(parseRate(text), undefined, text);
  });

  it('a bad rate is refused when granting, with nothing stored', async () => {
    const { agents } = setup();
    await agents.create('bot');
    await assert.rejects(agents.grant({ agent: 'bot', capability: 'p/x', rate: '10/fortnight' }, CAP_METHODS), code('INVALID_ARGUMENT'));
    assert.deepEqual(await agents.listGrants(), []);
  });

  it('a rate is enforced per agent and capability, refilling with time', async () => {
    const { agents, clock, limiter } = setup();
    const { agent } = await agents.create('bot');
    const { agent: other } = await agents.create('other');
    for (const a of ['bot', 'other']) for (const c of ['p/x', 'p/y']) await agents.grant({ agent: a, capability: c, rate: '2/min' }, CAP_METHODS);
    await agents.authorize(agent, 'p/x', 'GET', limiter);
    await agents.authorize(agent, 'p/x', 'GET', limiter);
    const refused = await agents.authorize(agent, 'p/x', 'GET', limiter).catch((e: unknown) => e);
    assert.ok(refused instanceof RateLimitedError && refused.code === 'RATE_LIMITED');
    assert.equal(refused.retryAfter, 30, 'one token refills in 30 s at 2/min');
    await agents.authorize(agent, 'p/y', 'GET', limiter);
    await agents.authorize(other, 'p/x', 'GET', limiter);
    clock.advance(29_999);
    await assert.rejects(agents.authorize(agent, 'p/x', 'GET', limiter), code('RATE_LIMITED'));
    clock.advance(1);
    await agents.authorize(agent, 'p/x', 'GET', limiter);
  });

  it('an approve setting other than each or first is refused', async () => {
    const { agents } = setup();
    await agents.create('bot');
    await assert.rejects(agents.grant({ agent: 'bot', capability: 'p/x', approve: 'always' }, CAP_METHODS), code('INVALID_ARGUMENT'));
    assert.equal((await agents.grant({ agent: 'bot', capability: 'p/x', approve: 'first' }, CAP_METHODS)).approve, 'first');
  });
});

describe('grants: revocation', () => {
  it('a revoked grant is gone from the next request on; revoking it again is refused', async () => {
    const { agents, limiter } = setup();
    const { agent } = await agents.create('bot');
    await agents.grant({ agent: 'bot', capability: 'p/x' }, CAP_METHODS);
    await agents.authorize(agent, 'p/x', 'DELETE', limiter);
    await agents.revokeGrant('bot', 'p/x');
    await assert.rejects(agents.authorize(agent, 'p/x', 'GET', limiter), code('CAPABILITY_NOT_GRANTED'));
    await assert.rejects(agents.revokeGrant('bot', 'p/x'), code('GRANT_NOT_FOUND'));
    await assert.rejects(agents.revokeGrant('ghost', 'p/x'), code('AGENT_NOT_FOUND'));
  });
});

describe('grants: several at once', () => {
  const item = (capability: string, methods?: string[]) => ({ capability, capabilityMethods: CAP_METHODS, methods: methods ?? null });

  it('one audit record per grant, all on the same terms; one refused capability grants none, and nothing is recorded as done', async () => {
    const { agents, storage, records } = setup();
    await agents.create('bot');
    await assert.rejects(agents.grantEach('bot', [item('p/a'), item('p/b', ['PUT'])], { rate: '5/min' }), code('INVALID_ARGUMENT'));
    await assert.rejects(agents.grantEach('bot', [item('p/a'), item('p/b')], { rate: '5/fortnight' }), code('INVALID_ARGUMENT'));
    assert.deepEqual([storage.grants.size, records.filter((r) => r.draft.action === 'grant.create').length], [0, 0]);
    const grants = await agents.grantEach('bot', [item('p/a'), item('p/b', ['get'])], { rate: '5/min', approve: 'first' });
    assert.deepEqual(grants.map((g) => [g.capability, g.methods, g.rate, g.approve]), [['p/a', null, { count: 5, periodMs: 60_000 }, 'first'], ['p/b', ['GET'], { count: 5, periodMs: 60_000 }, 'first']]);
    assert.deepEqual(records.filter((r) => r.draft.action === 'grant.create').map((r) => [r.draft.target?.split(' ')[1], r.ended]), [['capability:p/a', 'ok'], ['capability:p/b', 'ok']]);
  });

  it('a batch the store refuses writes none, and its records end with the error', async () => {
    const { agents, storage, records } = setup();
    await agents.create('bot');
    storage.putGrants = async () => {
      throw new Error('disk full');
    };
    await assert.rejects(agents.grantEach('bot', [item('p/a'), item('p/b')], {}));
    assert.deepEqual(records.filter((r) => r.draft.action === 'grant.create').map((r) => r.ended), ['INTERNAL_ERROR', 'INTERNAL_ERROR']);
  });

  it('revoking PROVIDER/* takes every grant of that provider, by name or not, and only those; an unheld target revokes nothing', async () => {
    const { agents, limiter, records } = setup();
    const { agent } = await agents.create('bot');
    await agents.grantEach('bot', [item('p/a'), item('p/b'), item('pp/a'), item('q/a')], {});
    await assert.rejects(agents.revokeGrants('bot', ['p/*', 'r/*']), code('GRANT_NOT_FOUND'));
    await assert.rejects(agents.revokeGrants('bot', ['p/a', 'q/none']), code('GRANT_NOT_FOUND'));
    await assert.rejects(agents.revokeGrants('bot', ['*']), code('INVALID_ARGUMENT'));
    assert.equal((await agents.listGrants('bot')).length, 4, 'nothing revoked');
    assert.deepEqual((await agents.revokeGrants('bot', ['p/*', 'p/a'])).revoked, ['p/a', 'p/b']);
    assert.deepEqual((await agents.listGrants('bot')).map((g) => g.capability), ['pp/a', 'q/a']);
    assert.deepEqual(records.filter((r) => r.draft.action === 'grant.revoke').map((r) => r.draft.target?.split(' ')[1]), ['capability:p/a', 'capability:p/b']);
    await assert.rejects(agents.authorize(agent, 'p/b', 'GET', limiter), code('CAPABILITY_NOT_GRANTED'));
    await agents.authorize(agent, 'pp/a', 'GET', limiter);
  });
});

describe('derived agents', () => {
  it("hold the source's grants on a lease ending at the earlier of the two, in the source's context", async () => {
    const { agents, clock } = setup();
    const { agent: source } = await agents.create('bot', { context: 'workspace:w1' });
    const soon = new Date(clock.now() + 60_000).toISOString();
    const until = new Date(clock.now() + 120_000).toISOString();
    await agents.grant({ agent: 'bot', capability: 'p/short', expiresAt: soon, methods: ['GET'] }, CAP_METHODS);
    await agents.grant({ agent: 'bot', capability: 'p/long', approve: 'first' }, CAP_METHODS);
    const derived = await agents.derive(source, 'bot.run-1', until);
    assert.equal(derived.agent.context, 'workspace:w1');
    assert.equal((await agents.authenticate(derived.token)).id, derived.agent.id);
    const held = new Map((await agents.listGrants(derived.agent.id)).map((g) => [g.capability, g]));
    assert.deepEqual([held.get('p/short')?.expiresAt, held.get('p/short')?.methods], [soon, ['GET']]);
    assert.deepEqual([held.get('p/long')?.expiresAt, held.get('p/long')?.approve], [until, 'first']);
  });

  it('a renewal takes the source\'s current terms, drops what the source lost, adds nothing; none once revoked', async () => {
    const { agents, clock } = setup();
    const { agent: source } = await agents.create('bot');
    await agents.grant({ agent: 'bot', capability: 'p/a' }, CAP_METHODS);
    await agents.grant({ agent: 'bot', capability: 'p/b' }, CAP_METHODS);
    const until = (ms: number) => new Date(clock.now() + ms).toISOString();
    const { agent: derived } = await agents.derive(source, 'bot.run-1', until(60_000));
    await agents.grant({ agent: 'bot', capability: 'p/a', methods: ['GET'] }, CAP_METHODS);
    await agents.revokeGrant('bot', 'p/b');
    await agents.grant({ agent: 'bot', capability: 'p/c' }, CAP_METHODS);
    assert.equal(await agents.renewLease(source, derived, until(120_000)), true);
    const held = await agents.listGrants(derived.id);
    assert.deepEqual(held.map((g) => [g.capability, g.methods, g.expiresAt]), [['p/a', ['GET'], until(120_000)]]);
    await agents.revoke(source.id);
    assert.equal(await agents.renewLease(source, derived, until(180_000)), false);
    assert.equal((await agents.listGrants(derived.id))[0]!.expiresAt, until(120_000), 'nothing renewed');
    await assert.rejects(agents.derive({ ...source, status: 'revoked' }, 'bot.run-2', until(60_000)), code('AGENT_REVOKED'));
  });
});
