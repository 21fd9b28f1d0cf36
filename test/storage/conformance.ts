// One behaviour for both engines: every test here runs against the embedded SQLite engine
// and against PostgreSQL (see conformance-*.test.ts). `open` gives a fresh, initialised
// store; `second` another connection (another process's view) to the same one.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { AuditLog } from '../../src/audit/log.ts';
import { describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { takeToken } from '../../src/policy/rate-limit.ts';
import type { AuditEntry, AuditSealer, CapabilityPolicy, SecretRecord, SecretVersionRecord, Storage } from '../../src/storage/types.ts';
import { createStateSealer, stateProblems } from '../../src/vault/seal.ts';
import { createSecretKey } from 'node:crypto';

export interface EngineUnderTest {
  /** `tamper` runs SQL on the store around the engine, as someone with write access to it would. */
  open(): Promise<{ storage: Storage; second: () => Promise<Storage>; tamper: (sql: string) => Promise<void>; cleanup: () => Promise<void> }>;
}

const sealer: AuditSealer = {
  hash: (prev, seq, entry) => `${prev.slice(0, 8)}:${seq}:${entry.action}`.padEnd(64, '0').slice(0, 64),
  outcomeMac: (seq) => `mac${seq}`,
  headMac: (h) => `head${h.seq}${h.hash.slice(0, 4)}:${h.outcomes}`,
};

const now = () => new Date().toISOString();

function secret(name: string, scope = 'global'): SecretRecord {
  return { id: randomUUID(), name, scope, description: null, pinnedProvider: null, aliases: [], groups: [], allowShort: false, currentVersion: 1, createdAt: now(), updatedAt: now() };
}

function version(secretId: string, v: number, byte = v): SecretVersionRecord {
  return { secretId, version: v, wrappedKey: Buffer.from([byte, 1, 2]), ciphertext: Buffer.from([byte, 0, 255, 7]), fingerprint: `fp${v}`, createdAt: now() };
}

function entry(action: string, capability: string | null = null): AuditEntry {
  return { at: now(), actor: 'owner:local', action, target: null, capability, method: null, host: null, path: null, decision: 'allow', reason: null };
}

const codeOf = (code: string) => (e: unknown) => isAivaultError(e, code as never);

export function conformance(name: string, engine: EngineUnderTest): void {
  describe(`storage conformance: ${name}`, () => {
    const withStore = (fn: (s: Storage, second: () => Promise<Storage>, tamper: (sql: string) => Promise<void>) => Promise<void>) => async () => {
      const { storage, second, tamper, cleanup } = await engine.open();
      try {
        await fn(storage, second, tamper);
      } finally {
        await cleanup();
      }
    };

    it('meta: written once, read back; a second initialize is refused', withStore(async (s) => {
      const meta = await s.readMeta();
      assert.ok(meta?.vaultId);
      await assert.rejects(s.initialize({ ...meta!, vaultId: randomUUID() }), codeOf('VAULT_ALREADY_INITIALIZED'));
      assert.deepEqual(await s.readMeta(), meta);
    }));

    it('secrets: create, unique (name, scope), filter, bytes round trip, generation bumps', withStore(async (s) => {
      const g0 = await s.generation();
      const a = secret('ALPHA');
      await s.createSecret(a, version(a.id, 1));
      assert.ok((await s.generation()) > g0);
      await assert.rejects(s.createSecret(secret('ALPHA'), version(randomUUID(), 1)), codeOf('SECRET_ALREADY_EXISTS'));
      const b = secret('ALPHA', 'workspace:w1');
      await s.createSecret(b, version(b.id, 1));
      assert.deepEqual((await s.listSecrets({ name: 'ALPHA' })).map((r) => r.scope), ['global', 'workspace:w1']);
      assert.deepEqual((await s.listSecrets({ scope: 'workspace:w1' })).map((r) => r.id), [b.id]);
      assert.deepEqual(await s.getSecret(a.id), a);
      const v = await s.getSecretVersion(a.id, 1);
      assert.deepEqual(Buffer.from(v!.ciphertext), Buffer.from([1, 0, 255, 7]));
      assert.equal(await s.getSecret(randomUUID()), undefined);
    }));

    it('secrets: rotation keeps current + previous, checks the expected version, rollback, delete cascades', withStore(async (s) => {
      const a = secret('ROT');
      await s.createSecret(a, version(a.id, 1));
      await s.rotateSecret(a.id, 1, version(a.id, 2), now());
      await s.rotateSecret(a.id, 2, version(a.id, 3), now());
      assert.deepEqual((await s.listSecretVersions(a.id)).map((v) => v.version), [2, 3]);
      await assert.rejects(s.rotateSecret(a.id, 2, version(a.id, 4), now()), codeOf('CONCURRENT_MODIFICATION'));
      assert.deepEqual((await s.listSecretVersions(a.id)).map((v) => v.version), [2, 3], 'a refused rotation wrote nothing');
      await s.setCurrentVersion(a.id, 3, 2, now());
      assert.equal((await s.getSecret(a.id))!.currentVersion, 2);
      await assert.rejects(s.setCurrentVersion(a.id, 2, 1, now()), codeOf('NO_PREVIOUS_VERSION'));
      assert.equal(await s.deleteSecret(a.id), true);
      assert.equal(await s.deleteSecret(a.id), false);
      assert.deepEqual(await s.listSecretVersions(a.id), []);
    }));

    it('secrets: listed with their versions in one statement, filtered and ordered as listSecrets, no keys or ciphertext', withStore(async (s, _second, tamper) => {
      const a = secret('b-second');
      const b = secret('a-first', 'workspace:w1');
      const c = secret('a-first');
      for (const r of [a, b, c]) await s.createSecret(r, version(r.id, 1));
      await s.rotateSecret(a.id, 1, version(a.id, 2), now());
      await s.rotateSecret(a.id, 2, version(a.id, 3), now());
      const listed = await s.listSecretsWithVersions();
      assert.deepEqual(listed.map((l) => l.secret), await s.listSecrets());
      assert.deepEqual(listed.map((l) => l.versions.map((v) => v.version)), [[1], [1], [2, 3]]);
      const kept = await s.listSecretVersions(a.id);
      assert.deepEqual(listed[2]!.versions, kept.map(({ version: v, fingerprint, createdAt }) => ({ version: v, fingerprint, createdAt })), 'metadata only');
      assert.deepEqual((await s.listSecretsWithVersions({ scope: 'workspace:w1' })).map((l) => l.secret.id), [b.id]);
      assert.deepEqual((await s.listSecretsWithVersions({ name: 'a-first' })).map((l) => l.secret.scope), ['global', 'workspace:w1']);
      // A secret whose versions are gone is still listed (the vault then reports it corrupted), not dropped.
      await tamper(`DELETE FROM secret_versions WHERE secret_id = '${c.id}'`);
      assert.deepEqual((await s.listSecretsWithVersions({ name: 'a-first', scope: 'global' })).map((l) => [l.secret.id, l.versions]), [[c.id, []]]);
    }));

    it('secrets: a batch of writes lands whole or not at all, with the error the failing write would give', withStore(async (s) => {
      const kept = secret('KEPT');
      await s.createSecret(kept, version(kept.id, 1));
      const names = async () => (await s.listSecrets()).map((r) => r.name);
      const g0 = await s.generation();
      const fresh = secret('FRESH');
      // The second write fails (a taken name): the first is not left behind.
      await assert.rejects(s.writeSecrets([{ kind: 'create', secret: fresh, first: version(fresh.id, 1) }, { kind: 'create', secret: secret('KEPT'), first: version(randomUUID(), 1) }]), codeOf('SECRET_ALREADY_EXISTS'));
      // A stale rotation after a create: neither lands.
      await assert.rejects(s.writeSecrets([{ kind: 'create', secret: fresh, first: version(fresh.id, 1) }, { kind: 'rotate', secretId: kept.id, expectedCurrent: 7, next: version(kept.id, 8), updatedAt: now() }]), codeOf('CONCURRENT_MODIFICATION'));
      assert.deepEqual(await names(), ['KEPT']);
      assert.deepEqual((await s.listSecretVersions(kept.id)).map((v) => v.version), [1]);
      assert.equal(await s.generation(), g0, 'refused batches changed nothing');
      await s.writeSecrets([{ kind: 'create', secret: fresh, first: version(fresh.id, 1) }, { kind: 'rotate', secretId: kept.id, expectedCurrent: 1, next: version(kept.id, 2), updatedAt: now(), allowShort: true }]);
      assert.deepEqual(await names(), ['FRESH', 'KEPT']);
      assert.equal((await s.getSecret(kept.id))!.currentVersion, 2);
      assert.equal((await s.getSecret(kept.id))!.allowShort, true, 'the acknowledgement changes with the value, in the same transaction');
      assert.equal(await s.generation(), g0 + 1, 'one transaction');
    }));

    it('group attachments: added and removed once each, concurrent attachers all land, generation bumps', withStore(async (s, second) => {
      const a = secret('ATTACHED');
      await s.createSecret(a, version(a.id, 1));
      const other = await second();
      const g = await s.generation();
      const results = await Promise.all(['w/g3', 'w/g1', 'w/g2', 'w/g1'].map((grp, i) => (i % 2 ? other : s).setSecretGroup(a.id, grp, true, now())));
      assert.deepEqual(results.filter(Boolean).length, 3, 'the second attach of w/g1 changes nothing');
      assert.deepEqual((await s.getSecret(a.id))!.groups, ['w/g1', 'w/g2', 'w/g3']);
      assert.ok((await s.generation()) > g);
      assert.equal(await s.setSecretGroup(a.id, 'w/g2', false, now()), true);
      assert.equal(await other.setSecretGroup(a.id, 'w/g2', false, now()), false);
      assert.deepEqual((await other.getSecret(a.id))!.groups, ['w/g1', 'w/g3']);
      await assert.rejects(s.setSecretGroup(randomUUID(), 'w/g1', true, now()), codeOf('SECRET_NOT_FOUND'));
    }));

    it('renames and aliases: unique within the scope, generation bumps', withStore(async (s) => {
      const a = { ...secret('REN_A'), aliases: ['billing'] };
      const b = secret('REN_B');
      await s.createSecret(a, version(a.id, 1));
      await s.createSecret(b, version(b.id, 1));
      await assert.rejects(s.createSecret({ ...secret('REN_C'), aliases: ['billing'] }, version(randomUUID(), 1)), codeOf('SECRET_ALREADY_EXISTS'));
      await assert.rejects(s.updateSecretIdentity(b.id, { aliases: ['billing'] }, now()), codeOf('SECRET_ALREADY_EXISTS'));
      await assert.rejects(s.updateSecretIdentity(b.id, { name: 'REN_A' }, now()), codeOf('SECRET_ALREADY_EXISTS'));
      const g = await s.generation();
      await s.updateSecretIdentity(b.id, { name: 'REN_D', aliases: ['ops', 'pager'] }, now());
      assert.ok((await s.generation()) > g);
      const d = await s.getSecret(b.id);
      assert.deepEqual([d!.name, d!.aliases], ['REN_D', ['ops', 'pager']]);
      const other = { ...secret('REN_E', 'workspace:w1'), aliases: ['billing'] };
      await s.createSecret(other, version(other.id, 1));
      await assert.rejects(s.updateSecretIdentity(randomUUID(), { name: 'X_Y' }, now()), codeOf('SECRET_NOT_FOUND'));
    }));

    it('the short-value acknowledgement is stored, read back and changed like every field', withStore(async (s) => {
      const a = { ...secret('SHORT_A'), allowShort: true };
      const b = secret('SHORT_B');
      await s.createSecret(a, version(a.id, 1));
      await s.createSecret(b, version(b.id, 1));
      assert.deepEqual([(await s.getSecret(a.id))!.allowShort, (await s.getSecret(b.id))!.allowShort], [true, false]);
      const g = await s.generation();
      await s.updateSecretIdentity(a.id, { allowShort: false }, now());
      await s.updateSecretIdentity(b.id, { allowShort: true }, now());
      assert.ok((await s.generation()) > g, 'a change every process must see bumps the generation');
      assert.deepEqual([(await s.getSecret(a.id))!.allowShort, (await s.getSecret(b.id))!.allowShort], [false, true]);
    }));

    it('two writers rotating one secret at once: exactly one wins', withStore(async (s, second) => {
      const other = await second();
      try {
        const a = secret('RACE');
        await s.createSecret(a, version(a.id, 1));
        const results = await Promise.allSettled([s.rotateSecret(a.id, 1, version(a.id, 2, 20), now()), other.rotateSecret(a.id, 1, version(a.id, 2, 21), now())]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isAivaultError(failed.reason, 'CONCURRENT_MODIFICATION'), String(failed.reason));
        assert.deepEqual((await other.listSecretVersions(a.id)).map((v) => v.version), [1, 2]);
      } finally {
        await other.close();
      }
    }));

    it('credentials and capabilities: unique, capability needs its credential, credential in use cannot go', withStore(async (s) => {
      const cred = { name: 'c1', provider: 'p', auth: { header: { header_name: 'x', value_template: '{{secret}}' } }, bindings: { secret: 'id1' }, hosts: ['api.example.com'], allowHttp: false, allowPrivateNetwork: true, createdAt: now() };
      await s.createCredential(cred);
      assert.deepEqual(await s.getCredential('c1'), cred);
      await assert.rejects(s.createCredential(cred), codeOf('CREDENTIAL_ALREADY_EXISTS'));
      const cap = { id: 'p/read', provider: 'p', credential: 'c1', hosts: [], methods: ['GET'], pathPrefixes: ['/v1'], limits: { timeoutMs: 5000 }, websocket: true, createdAt: now() };
      await assert.rejects(s.createCapability({ ...cap, credential: 'nope' }), codeOf('CREDENTIAL_NOT_FOUND'));
      await s.createCapability(cap);
      assert.deepEqual(await s.getCapability('p/read'), cap);
      await assert.rejects(s.createCapability(cap), codeOf('CAPABILITY_ALREADY_EXISTS'));
      await assert.rejects(s.deleteCredential('c1'), codeOf('CREDENTIAL_IN_USE'));
      assert.equal(await s.deleteCapability('p/read'), true);
      assert.equal(await s.deleteCredential('c1'), true);
      assert.deepEqual(await s.listCredentials(), []);
    }));

    it('credentials and capabilities change in place, only at the generation their change was checked against', withStore(async (s) => {
      const cred = { name: 'c1', provider: 'p', auth: { header: { header_name: 'x', value_template: '{{secret}}' } }, bindings: { secret: 'id1' }, hosts: ['api.example.com'], allowHttp: false, allowPrivateNetwork: false, createdAt: now() };
      await s.createCredential(cred);
      await s.createCredential({ ...cred, name: 'c2' });
      const cap = { id: 'p/read', provider: 'p', credential: 'c1', hosts: ['api.example.com'], methods: ['GET'], pathPrefixes: ['/v1'], limits: {}, websocket: false, createdAt: now() };
      await s.createCapability(cap);

      const at = await s.generation();
      const wider = { ...cred, auth: 'basic', bindings: { username: 'id2', password: 'id3' }, hosts: ['api.example.com', '127.0.0.1:8080'], allowHttp: true, allowPrivateNetwork: true };
      await s.updateCredential(wider, at);
      assert.deepEqual(await s.getCredential('c1'), wider);
      assert.ok((await s.generation()) > at, 'an update bumps the generation (caches drop what they held)');
      // Checked against a state that is no longer the vault's: refused, nothing written.
      await assert.rejects(s.updateCredential({ ...wider, hosts: ['other.example.com'] }, at), codeOf('CONCURRENT_MODIFICATION'));
      assert.deepEqual(await s.getCredential('c1'), wider);
      await assert.rejects(s.updateCredential({ ...cred, name: 'nope' }, await s.generation()), codeOf('CREDENTIAL_NOT_FOUND'));

      const moved = { ...cap, credential: 'c2', hosts: ['api.example.com'], methods: ['GET', 'POST'], pathPrefixes: ['/v1', '/v2'], limits: { timeoutMs: 5000 }, websocket: true };
      const before = await s.generation();
      await s.updateCapability(moved, before);
      assert.deepEqual(await s.getCapability('p/read'), moved);
      assert.ok((await s.generation()) > before);
      await assert.rejects(s.updateCapability({ ...moved, methods: ['DELETE'] }, before), codeOf('CONCURRENT_MODIFICATION'));
      await assert.rejects(s.updateCapability({ ...moved, id: 'p/nope' }, await s.generation()), codeOf('CAPABILITY_NOT_FOUND'));
      // The capability moved: the first credential is free, the second in use.
      assert.equal(await s.deleteCredential('c1'), true);
      await assert.rejects(s.deleteCredential('c2'), codeOf('CREDENTIAL_IN_USE'));
    }));

    it('grants in a batch: all written, or none; deleted together, counted', withStore(async (s) => {
      const agent = { id: randomUUID(), name: 'batch', tokenHash: 'b'.repeat(64), publicKey: null, status: 'active' as const, context: null, createdAt: now(), revokedAt: null };
      await s.createAgent(agent);
      const grant = (capability: string, agentId = agent.id) => ({ agentId, capability, methods: null, rate: null, expiresAt: null, createdAt: now(), approve: null, firstApprovedAt: null });
      const before = await s.generation();
      await s.putGrants([grant('p/a'), grant('p/b')]);
      assert.equal(await s.generation(), before + 1, 'one change');
      // The second row names no agent: the whole batch is refused, the first row with it.
      await assert.rejects(s.putGrants([grant('p/c'), grant('p/d', randomUUID())]));
      assert.deepEqual((await s.listGrants(agent.id)).map((g) => g.capability), ['p/a', 'p/b']);
      assert.equal(await s.deleteGrants(agent.id, ['p/a', 'p/b', 'p/none']), 2);
      assert.deepEqual(await s.listGrants(agent.id), []);
    }));

    it('agents, grants, owners, endpoint overrides, flows', withStore(async (s) => {
      const agent = { id: randomUUID(), name: 'bot', tokenHash: 'h'.repeat(64), publicKey: null, status: 'active' as const, context: 'group:w1/g1', createdAt: now(), revokedAt: null };
      await s.createAgent(agent);
      await assert.rejects(s.createAgent({ ...agent, id: randomUUID(), tokenHash: null }), codeOf('AGENT_ALREADY_EXISTS'));
      assert.deepEqual(await s.findAgentByTokenHash('h'.repeat(64)), agent);
      assert.deepEqual(await s.getAgent('bot'), agent);
      const grant = { agentId: agent.id, capability: 'p/read', methods: ['GET'], rate: { count: 5, periodMs: 60_000 }, expiresAt: null, createdAt: now(), approve: 'first' as const, firstApprovedAt: null };
      await s.putGrants([grant]);
      assert.deepEqual(await s.getGrant(agent.id, 'p/read'), grant);
      assert.equal(await s.markGrantApproved(agent.id, 'p/read', 'T1'), true);
      assert.equal(await s.markGrantApproved(agent.id, 'p/read', 'T2'), false, 'only the first approval is recorded');
      assert.equal((await s.getGrant(agent.id, 'p/read'))!.firstApprovedAt, 'T1');
      assert.equal(await s.setAgentContext(agent.id, 'workspace:w2'), true);
      assert.equal((await s.getAgent('bot'))!.context, 'workspace:w2');
      assert.equal(await s.setAgentContext(agent.id, null), true);
      assert.equal((await s.getAgent('bot'))!.context, null);
      assert.equal(await s.setAgentContext(randomUUID(), 'workspace:w2'), false);
      assert.equal(await s.revokeAgent(agent.id, now()), true);
      assert.equal(await s.revokeAgent(agent.id, now()), false);
      assert.equal(await s.deleteGrants(agent.id, ['p/read']), 1);

      assert.deepEqual(await s.listOwners(), []);
      const o1 = { id: randomUUID(), name: 'laptop', publicKey: 'PEM1', createdAt: now() };
      await s.addOwner(o1);
      await assert.rejects(s.addOwner({ ...o1, id: randomUUID() }), codeOf('OWNER_ALREADY_EXISTS'));
      await assert.rejects(s.removeOwner(o1.id), codeOf('LAST_OWNER'));
      const o2 = { id: randomUUID(), name: 'desktop', publicKey: 'PEM2', createdAt: now() };
      await s.addOwner(o2);
      assert.equal(await s.getOwner('desktop').then((o) => o?.id), o2.id);
      assert.equal(await s.removeOwner(o1.id), true);

      const override = { provider: 'openai', hosts: { 'api.openai.com': '127.0.0.1:9' }, tokenEndpoint: null, allowHttp: true, allowPrivateNetwork: true, createdAt: now() };
      await s.setEndpointOverride(override);
      await s.setEndpointOverride({ ...override, hosts: { 'api.openai.com': '127.0.0.1:10' } });
      assert.deepEqual((await s.getEndpointOverride('openai'))!.hosts, { 'api.openai.com': '127.0.0.1:10' });
      assert.equal(await s.deleteEndpointOverride('openai'), true);

      const policy: CapabilityPolicy = { rateLimitPerMinute: 5, maxRequestBodyBytes: null, maxResponseBodyBytes: 10, responseBlock: ['$.x'], updatedAt: now() };
      await s.putCapabilityPolicy('p/read', policy);
      await s.putCapabilityPolicy('p/write', { ...policy, rateLimitPerMinute: null });
      assert.deepEqual(await s.listCapabilityPolicies(), new Map([['p/read', policy], ['p/write', { ...policy, rateLimitPerMinute: null }]]));
      assert.deepEqual(await s.getCapabilityPolicy('p/read'), policy);

      const flow = { id: 'gh/x', mode: 'acquire_secret' as const, target: 'https://x', method: 'POST', visibility: 'shape_only' as const, kind: null, storeField: 'a', storeAlias: 'A', overwrite: false, credential: null, allowHttp: false, allowPrivateNetwork: false, createdAt: now() };
      await s.putFlow(flow);
      await assert.rejects(s.putFlow(flow), codeOf('CAPABILITY_ALREADY_EXISTS'));
      assert.deepEqual(await s.getFlow('gh/x'), flow);
      assert.equal(await s.deleteFlow('gh/x'), true);
    }));

    it('approvals: decided exactly once, even by two deciders at once', withStore(async (s, second) => {
      const other = await second();
      try {
        const details = { agentName: 'bot', url: 'https://h/v1?amount=5', headers: [['x-a', '1']] as Array<[string, string]>, body: { length: 2, sha256: 'ab'.repeat(32), preview: '{}', encoding: 'utf8' as const, truncated: false }, digest: 'cd'.repeat(32) };
        const a = { id: 'apr_1', agentId: 'a', capability: 'p/read', method: 'GET', host: 'h', path: '/v1', status: 'pending' as const, requestedAt: now(), expiresAt: now(), decidedAt: null, decidedBy: null, details };
        await s.putApproval(a);
        assert.deepEqual((await s.getApproval('apr_1'))!.details, details, 'what the owner is shown is stored whole');
        const [x, y] = await Promise.all([s.decideApproval('apr_1', 'approved', 'owner:a', now()), other.decideApproval('apr_1', 'denied', 'owner:b', now())]);
        assert.equal(Number(x) + Number(y), 1);
        const decided = await s.getApproval('apr_1');
        assert.equal(decided!.status, x ? 'approved' : 'denied');
        assert.deepEqual((await s.listApprovals('pending')).length, 0);
      } finally {
        await other.close();
      }
    }));

    it('nonces: one use per window across connections, reusable once expired', withStore(async (s, second) => {
      const other = await second();
      try {
        const t = Date.now();
        const attempts = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? other : s).rememberNonce('signer n1', t + 1000, t)));
        assert.equal(attempts.filter(Boolean).length, 1, 'exactly one of 16 concurrent uses wins');
        assert.equal(await s.rememberNonce('signer n1', t + 3000, t + 1001), true, 'an expired nonce may be recorded again');
        assert.equal(await other.rememberNonce('signer n1', t + 3000, t + 1002), false);
      } finally {
        await other.close();
      }
    }));

    it('rate buckets: one budget across connections', withStore(async (s, second) => {
      const other = await second();
      try {
        const rate = { count: 5, periodMs: 3_600_000 };
        const t = Date.now();
        const decisions = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? other : s).updateBucket('agent cap', (state) => takeToken(state, rate, t))));
        assert.equal(decisions.filter((d) => d.allowed).length, 5);
        assert.ok(decisions.filter((d) => !d.allowed).every((d) => d.retryAfter >= 1));
        // An hour later the bucket is full again.
        assert.equal((await s.updateBucket('agent cap', (state) => takeToken(state, rate, t + 3_600_000))).allowed, true);
      } finally {
        await other.close();
      }
    }));

    it('leases: one holder at a time, until released or expired', withStore(async (s, second) => {
      const other = await second();
      try {
        const t = Date.now();
        const got = await Promise.all([s.acquireLease('oauth:x', 'A', 1000, t), other.acquireLease('oauth:x', 'B', 1000, t)]);
        assert.equal(got.filter(Boolean).length, 1);
        const [winner, loser] = got[0] ? (['A', 'B'] as const) : (['B', 'A'] as const);
        assert.equal(await s.acquireLease('oauth:x', winner, 1000, t + 10), true, 'the holder may renew');
        await s.releaseLease('oauth:x', loser); // not the holder's: no effect
        assert.equal(await s.acquireLease('oauth:x', loser, 1000, t + 20), false);
        assert.equal(await s.acquireLease('oauth:x', loser, 1000, t + 5000), true, 'an expired lease passes on');
        await other.releaseLease('oauth:x', loser);
        assert.equal(await s.acquireLease('oauth:x', winner, 1000, t + 5001), true, 'a released lease is free');
      } finally {
        await other.close();
      }
    }));

    it('oauth token cache round trip', withStore(async (s) => {
      await s.putOAuthToken('builtin:spotify', { sealed: Buffer.from([9, 8, 7]), expiresAt: 1_900_000_000_000 });
      const t = await s.getOAuthToken('builtin:spotify');
      assert.deepEqual([Buffer.from(t!.sealed), t!.expiresAt], [Buffer.from([9, 8, 7]), 1_900_000_000_000]);
      await s.deleteOAuthToken('builtin:spotify');
      assert.equal(await s.getOAuthToken('builtin:spotify'), undefined);
    }));

    it('audit: concurrent appenders on two connections form one contiguous chain', withStore(async (s, second) => {
      const other = await second();
      try {
        const before = (await s.readAuditEnds()).head?.seq ?? 0;
        const batches = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? other : s).writeAudit([{ entry: entry(`a${i}`, 'p/read') }, { entry: entry(`b${i}`) }], [], sealer)));
        const seqs = batches.flat().sort((x, y) => x - y);
        assert.deepEqual(seqs, Array.from({ length: 20 }, (_, i) => before + i + 1));
        const records = await s.readAudit({ afterSeq: before });
        for (let i = 1; i < records.length; i++) assert.equal(records[i]!.prevHash, records[i - 1]!.hash, `record ${records[i]!.seq} follows ${records[i - 1]!.seq}`);
        const { head } = await other.readAuditEnds();
        assert.equal(head!.seq, before + 20);
        assert.equal(head!.hash, records.at(-1)!.hash);
        await s.writeAudit([], [{ seq: before + 1, outcome: { status: 200 } }], sealer);
        assert.deepEqual((await other.readAudit({ afterSeq: before, limit: 1 }))[0]!.outcome, { status: 200 });
        assert.equal((await s.readAudit({ afterSeq: before, capability: 'p/read' })).length, 10);
      } finally {
        await other.close();
      }
    }));

    it('rekey: all or nothing, refused when anything changed since the rotation read the vault', withStore(async (s) => {
      const a = secret('REKEY_A');
      await s.createSecret(a, version(a.id, 1));
      await s.rotateSecret(a.id, 1, version(a.id, 2), now());
      await s.putOAuthToken('builtin:x', { sealed: Buffer.from([1]), expiresAt: 1 });
      const meta = (await s.readMeta())!;
      const g = await s.generation();
      const change = { keyProvider: '{"kind":"env","variable":"AIVAULT_MASTER_KEY"}', keyCheck: 'new-check', keyring: '{"v":1}', versions: [1, 2].map((n) => ({ secretId: a.id, version: n, wrappedKey: Buffer.from([90 + n]) })) };
      await assert.rejects(s.rekey(change, g - 1, meta.keyCheck), codeOf('CONCURRENT_MODIFICATION'));
      await assert.rejects(s.rekey({ ...change, versions: change.versions.slice(0, 1) }, g, meta.keyCheck), codeOf('CONCURRENT_MODIFICATION'), 'a version left out');
      await assert.rejects(s.createSecret(secret('STALE'), version(randomUUID(), 1), 'not-the-key-check'), codeOf('VAULT_KEY_MISMATCH'));
      assert.deepEqual(await s.readMeta(), meta, 'refused rekeys changed nothing');
      assert.deepEqual(Buffer.from((await s.getSecretVersion(a.id, 1))!.wrappedKey), Buffer.from([1, 1, 2]));
      await s.rekey(change, g, meta.keyCheck);
      const after = (await s.readMeta())!;
      assert.deepEqual([after.keyProvider, after.keyCheck, after.keyring], [change.keyProvider, 'new-check', '{"v":1}']);
      assert.deepEqual(Buffer.from((await s.getSecretVersion(a.id, 2))!.wrappedKey), Buffer.from([92]));
      assert.equal(await s.getOAuthToken('builtin:x'), undefined, 'caches sealed under the old key are dropped');
      await assert.rejects(s.rotateSecret(a.id, 2, version(a.id, 3), now(), meta.keyCheck), codeOf('VAULT_KEY_MISMATCH'), 'a writer with the old key is refused');
      await s.rotateSecret(a.id, 2, version(a.id, 3), now(), 'new-check');
    }));

    it('audit log: a record with NUL (from an agent) is stored, and does not sink its batch', withStore(async (s) => {
      const log = new AuditLog(s, randomBytes(32));
      const [bad, good] = await Promise.all([
        log.append({ actor: 'agent:x', action: 'invoke', capability: 'made\u0000up', decision: 'deny', reason: 'CAPABILITY_NOT_FOUND' }),
        log.append({ actor: 'agent:y', action: 'invoke', capability: 'p/read', decision: 'allow' }),
      ]);
      assert.equal(good, bad + 1);
      assert.equal((await log.list({ afterSeq: bad - 1, limit: 1 }))[0]!.capability, 'made\ufffdup');
      assert.deepEqual(await log.verify(), { ok: true, count: good });
      await log.close();
    }));

    it('state seal: every change is resealed in its own transaction (concurrent writers too); a change around the engine shows', withStore(async (s, second, tamper) => {
      const sealer = createStateSealer(createSecretKey(randomBytes(32)));
      const problems = async () => stateProblems(sealer, await s.readState());
      s.useStateSealer(sealer);
      await s.sealState();
      assert.deepEqual(await problems(), []);
      const a = secret('SEALED_A');
      await s.createSecret(a, version(a.id, 1));
      await s.rotateSecret(a.id, 1, version(a.id, 2), now());
      await s.setCurrentVersion(a.id, 2, 1, now());
      await s.setSecretGroup(a.id, 'w/g', true, now());
      await s.updateSecretIdentity(a.id, { aliases: ['sealed-a'] }, now());
      const agent = { id: randomUUID(), name: 'sealed-bot', tokenHash: 'h', publicKey: null, status: 'active' as const, context: null, createdAt: now(), revokedAt: null };
      await s.createAgent(agent);
      await s.putGrants([{ agentId: agent.id, capability: 'p/read', methods: null, rate: null, expiresAt: null, createdAt: now(), approve: 'first', firstApprovedAt: null }]);
      await s.markGrantApproved(agent.id, 'p/read', now());
      assert.deepEqual(await problems(), []);
      // Two processes writing at once: the last commit's seal covers both.
      const other = await second();
      try {
        other.useStateSealer(sealer);
        await Promise.all(Array.from({ length: 8 }, (_, i) => {
          const x = secret(`SEALED_RACE_${i}`);
          return (i % 2 ? other : s).createSecret(x, version(x.id, 1));
        }));
        assert.deepEqual(await problems(), []);
      } finally {
        await other.close();
      }
      await tamper(`UPDATE secrets SET current_version = 2 WHERE id = '${a.id}'`);
      assert.match((await problems()).join(), /: secrets$/);
      await s.deleteSecret(a.id);
      assert.deepEqual(await problems(), [], 'the next change through the engine seals what it finds (verify reports before that)');
      await tamper(`DELETE FROM grants`);
      assert.match((await problems()).join(), /: grants$/);
    }));

    // Where the engines once drifted apart: each case failed on one of them before core.ts.
    it('drift: initialize bumps the generation (a broker caching the empty vault sees the change)', withStore(async (s) => {
      assert.ok((await s.generation()) >= 1);
    }));

    it('drift: the websocket flag is stored as 0/1 like every flag, and reads back as a boolean', withStore(async (s, _second, tamper) => {
      await s.createCredential({ name: 'ws', provider: 'p', auth: {}, bindings: {}, hosts: [], allowHttp: false, allowPrivateNetwork: false, createdAt: now() });
      const cap = { id: 'p/ws', provider: 'p', credential: 'ws', hosts: [], methods: ['GET'], pathPrefixes: ['/'], limits: {}, websocket: false, createdAt: now() };
      await s.createCapability(cap);
      assert.equal((await s.getCapability('p/ws'))!.websocket, false);
      await tamper(`UPDATE capabilities SET websocket = 1 WHERE id = 'p/ws'`);
      assert.equal((await s.getCapability('p/ws'))!.websocket, true);
    }));

    it('drift: lists sort by bytes (upper case first, then punctuation and lower case), whatever the collation', withStore(async (s) => {
      const names = ['b', 'B', 'a_c', 'ab', 'A'];
      for (const name of names) {
        const x = secret(name);
        await s.createSecret(x, version(x.id, 1));
        await s.createAgent({ id: randomUUID(), name, tokenHash: null, publicKey: null, status: 'active', context: null, createdAt: now(), revokedAt: null });
      }
      const sorted = ['A', 'B', 'a_c', 'ab', 'b'];
      assert.deepEqual((await s.listSecrets()).map((r) => r.name), sorted);
      assert.deepEqual((await s.listAgents()).map((r) => r.name), sorted);
    }));

    it('drift: a batch fails with the error of its first failing write, whatever the writes after it', withStore(async (s) => {
      const kept = secret('DRIFT_KEPT');
      await s.createSecret(kept, version(kept.id, 1));
      await assert.rejects(
        s.writeSecrets([{ kind: 'create', secret: secret('DRIFT_KEPT'), first: version(randomUUID(), 1) }, { kind: 'rotate', secretId: kept.id, expectedCurrent: 7, next: version(kept.id, 8), updatedAt: now() }]),
        codeOf('SECRET_ALREADY_EXISTS'),
      );
    }));

    it('drift: a rekey under a key the vault no longer uses is VAULT_KEY_MISMATCH, even when the generation moved too', withStore(async (s) => {
      const g = await s.generation();
      const a = secret('DRIFT_REKEY');
      await s.createSecret(a, version(a.id, 1));
      const change = { keyProvider: '{}', keyCheck: 'next', keyring: '{}', versions: [{ secretId: a.id, version: 1, wrappedKey: Buffer.from([1]) }] };
      await assert.rejects(s.rekey(change, g, 'not-the-key-check'), codeOf('VAULT_KEY_MISMATCH'));
    }));

    it('many operations in flight at once on two connections: each is atomic, failures roll back only themselves', withStore(async (s, second) => {
      const other = await second();
      const pick = (i: number) => (i % 2 ? other : s);
      try {
        const a = secret('INFLIGHT');
        await s.createSecret(a, version(a.id, 1));
        const g0 = await s.generation();
        const before = (await s.readAuditEnds()).head?.seq ?? 0;
        const rate = { count: 10, periodMs: 3_600_000 };
        const t = Date.now();
        const rotations = (async () => {
          for (let v = 1; v <= 10; v++) await pick(v).rotateSecret(a.id, v, version(a.id, v + 1), now());
        })();
        const stale = Array.from({ length: 10 }, (_, i) => pick(i).rotateSecret(a.id, 999, version(a.id, 1000 + i), now()).then(() => 'landed', (e: unknown) => (isAivaultError(e, 'CONCURRENT_MODIFICATION') ? 'refused' : e)));
        const audits = Array.from({ length: 30 }, (_, i) => pick(i).writeAudit([{ entry: entry(`inflight${i}`) }], [], sealer));
        const buckets = Array.from({ length: 30 }, (_, i) => pick(i).updateBucket('inflight', (state) => takeToken(state, rate, t)));
        const reads = Array.from({ length: 30 }, (_, i) => pick(i).getSecret(a.id));
        const [, staleResults, seqs, decisions, seen] = await Promise.all([rotations, Promise.all(stale), Promise.all(audits), Promise.all(buckets), Promise.all(reads)]);
        assert.deepEqual(new Set(staleResults), new Set(['refused']));
        assert.equal((await s.getSecret(a.id))!.currentVersion, 11);
        assert.deepEqual((await s.listSecretVersions(a.id)).map((v) => v.version), [10, 11]);
        assert.equal(await s.generation(), g0 + 10, 'one bump per rotation that landed, none for the refused ones');
        assert.deepEqual(seqs.flat().sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => before + i + 1));
        const records = await s.readAudit({ afterSeq: before });
        for (let i = 1; i < records.length; i++) assert.equal(records[i]!.prevHash, records[i - 1]!.hash);
        assert.equal(decisions.filter((d) => d.allowed).length, 10);
        assert.ok(seen.every((r) => r !== undefined && r.currentVersion >= 1 && r.currentVersion <= 11));
      } finally {
        await other.close();
      }
    }));

    it('audit anchor: written with the head in one commit; verify catches cleared outcomes, a cut log and a missing anchor', withStore(async (s, _second, tamper) => {
      const log = new AuditLog(s, randomBytes(32));
      const first = await log.append({ actor: 'owner:local', action: 'one', decision: 'allow' });
      log.complete(first, { status: 200 });
      await log.append({ actor: 'owner:local', action: 'two', decision: 'allow' }, { status: 201 });
      await log.flush();
      const { head, anchor } = await s.readAuditEnds();
      assert.ok(head);
      assert.deepEqual(anchor, head);
      assert.equal(head.outcomes, 2);
      assert.equal(await s.countAuditOutcomes(), 2);
      assert.deepEqual(await log.verify(), { ok: true, count: 2 });
      await tamper(`UPDATE audit_log SET outcome = NULL, outcome_mac = NULL WHERE seq = ${first}`);
      assert.match((await log.verify()).problem!, /outcomes were removed/);
      await tamper(`DELETE FROM audit_log; DELETE FROM audit_meta`);
      assert.match((await log.verify()).problem!, /the log is empty/);
      // The next writer records what it found, in the chain, and verify keeps failing there.
      await log.append({ actor: 'owner:local', action: 'three', decision: 'allow' });
      const result = await log.verify();
      assert.equal(result.brokenAt, 1);
      assert.match(result.problem!, /did not match its anchor/);
      await log.close();
    }));
  });
}
