import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Provider from 'oidc-provider';
import { composeServices } from '../../src/services.ts';
import { isAivaultError } from '../../src/errors.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';
import { readAll, testBroker, type TestBroker } from '../helpers/broker.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const TTL = 3;

describe('o_auth2 against a real OAuth2 server (oidc-provider) on loopback', () => {
  let server: Server;
  let provider: InstanceType<typeof Provider>;
  let issuer: string;
  let up: Upstream;
  let t: TestBroker;
  let grants = 0;
  const seen: string[] = [];

  async function seedRefreshToken(): Promise<string> {
    const client = await provider.Client.find('agent-app');
    const grant = new provider.Grant({ accountId: 'user-1', clientId: 'agent-app' });
    grant.addOIDCScope('openid offline_access');
    const grantId = await grant.save();
    return new provider.RefreshToken({ accountId: 'user-1', client: client!, grantId, scope: 'openid offline_access', gty: 'authorization_code' }).save();
  }

  before(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    provider = new Provider(issuer, {
      clients: [
        { client_id: 'agent-app', client_secret: 'app-secret-0123456789', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'client_secret_basic' },
        { client_id: 'svc-client-id', client_secret: 'svc-secret-0123456789', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_post' },
      ],
      features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
      ttl: { AccessToken: TTL, ClientCredentials: TTL, RefreshToken: 3600, Grant: 3600 },
      rotateRefreshToken: true,
      findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    } as ConstructorParameters<typeof Provider>[1]);
    provider.on('grant.success', () => grants++);
    server.on('request', provider.callback());

    up = await startUpstream();
    const check = async (token: string) => (await provider.AccessToken.find(token)) ?? (await provider.ClientCredentials.find(token));
    up.handle('/v1', async (req, res) => {
      const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      seen.push(token);
      const found = token && !req.url!.startsWith('/v1/always401') ? await check(token) : undefined;
      res.statusCode = found && !found.isExpired ? 200 : 401;
      res.end(JSON.stringify({ ok: res.statusCode === 200, echo: token }));
    });
    t = await testBroker();
  });
  after(async () => {
    await t.close();
    await up.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const auth = (extra: object = {}) => ({ o_auth2: { grant_type: 'refresh_token' as const, token_endpoint: `${issuer}/token`, client_auth: 'basic' as const, ...extra } });
  const get = async (cap: string, path = '/v1/me', broker = t.broker) => {
    const res = await broker.invoke({ capability: cap, method: 'GET', path });
    return { status: res.status, body: JSON.parse(await readAll(res.body)) as { ok: boolean; echo: string } };
  };
  let cap: string;
  let original: string;

  it('obtains an access token with the refresh token, and the upstream accepts it (echo scrubbed)', async () => {
    original = await seedRefreshToken();
    cap = await t.custom({ name: 'oa', auth: auth(), secrets: { client_id: 'agent-app', client_secret: 'app-secret-0123456789', refresh_token: original }, hosts: [up.host] });
    const r = await get(cap);
    assert.deepEqual(r, { status: 200, body: { ok: true, echo: '[REDACTED]' } });
    assert.equal(grants, 1);
  });

  it('stores a rotated refresh token at once; the old one is spent', async () => {
    const cred = await t.services.catalog.describeCredential('oa');
    const secretId = cred.bindings.get('refresh_token')!;
    const info = await t.vault.describeSecret(secretId);
    assert.equal(info.currentVersion, 2, 'the rotated refresh token was stored as a new version');
    const current = (await t.vault.revealSecret(secretId)).toString();
    assert.notEqual(current, original);
    assert.equal((await provider.RefreshToken.find(original))?.consumed !== undefined, true);
  });

  it('caches the access token until shortly before it expires', async () => {
    await get(cap);
    await get(cap);
    assert.equal(grants, 1);
    await sleep(TTL * 1000 + 100);
    await get(cap);
    assert.equal(grants, 2);
  });

  it('N concurrent invokes with an expired token cause exactly one token request, and all proceed', async () => {
    await sleep(TTL * 1000 + 100);
    const before = grants;
    const results = await Promise.all(Array.from({ length: 10 }, () => get(cap)));
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(grants, before + 1);
  });

  it('keeps the token sealed at rest: a new broker (a restart) does not refresh', async () => {
    const before = grants;
    const restarted = composeServices(t.vault, await builtinRegistry()).broker;
    try {
      assert.equal((await get(cap, '/v1/me', restarted)).status, 200);
      assert.equal(grants, before);
    } finally {
      await restarted.close();
    }
  });

  it('an updated credential gets a token of its own: the one obtained before is not sent to its new hosts', async () => {
    const before = grants;
    const held = seen.at(-1)!;
    await t.definitions.updateCredential('oa', { hosts: [up.host, `localhost:${up.port}`] });
    await t.definitions.updateCapability(cap, { hosts: [`localhost:${up.port}`] });
    assert.equal((await get(cap)).status, 200);
    assert.equal(grants, before + 1, 'a token request for the updated credential');
    assert.notEqual(seen.at(-1), held);
  });

  it('a 401 causes one refresh and one retry', async () => {
    const current = seen.at(-1)!;
    await (await provider.AccessToken.find(current))!.destroy();
    const before = grants;
    const sawBefore = seen.length;
    assert.equal((await get(cap)).status, 200);
    assert.equal(grants, before + 1);
    assert.equal(seen.length, sawBefore + 2);
  });

  it('a 401 that persists is returned after one retry, never a loop', async () => {
    const before = grants;
    const sawBefore = seen.length;
    assert.equal((await get(cap, '/v1/always401')).status, 401);
    assert.equal(grants, before + 1);
    assert.equal(seen.length, sawBefore + 2);
  });

  it('a failed refresh gives OAUTH_REFRESH_FAILED with the error code, never the body', async () => {
    const bad = await t.custom({ name: 'oa-bad', auth: auth(), secrets: { client_id: 'agent-app', client_secret: 'app-secret-0123456789', refresh_token: 'not-a-refresh-token' }, hosts: [up.host] });
    const sawBefore = seen.length;
    await assert.rejects(t.broker.invoke({ capability: bad, method: 'GET', path: '/v1/me' }), (e) => isAivaultError(e, 'OAUTH_REFRESH_FAILED') && /invalid_grant/.test(e.message) && !/not found/.test(e.message));
    const wrongClient = await t.custom({ name: 'oa-client', auth: auth(), secrets: { client_id: 'agent-app', client_secret: 'wrong-secret-0123456789', refresh_token: await seedRefreshToken() }, hosts: [up.host] });
    await assert.rejects(t.broker.invoke({ capability: wrongClient, method: 'GET', path: '/v1/me' }), (e) => isAivaultError(e, 'OAUTH_REFRESH_FAILED') && /invalid_client/.test(e.message));
    assert.equal(seen.length, sawBefore, 'nothing reached the upstream');
  });

  it('client_credentials with client_secret_post', async () => {
    const cc = await t.custom({ name: 'svc', auth: { o_auth2: { grant_type: 'client_credentials', token_endpoint: `${issuer}/token`, client_auth: 'post' } }, secrets: { client_id: 'svc-client-id', client_secret: 'svc-secret-0123456789' }, hosts: [up.host] });
    assert.equal((await get(cc)).status, 200);
  });

  it('the audit log holds no token, and refreshes are recorded as secret rotations', async () => {
    await t.vault.audit.flush();
    const dump = JSON.stringify(await t.vault.audit.list());
    for (const token of seen) assert.equal(dump.includes(token), false);
    assert.equal(dump.includes(original), false);
    assert.ok(dump.includes('secret.rotate'));
  });
});
