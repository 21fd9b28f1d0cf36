// Registry credential alternatives: a provider reachable with an API key, through a gateway
// (own host and path prefix) or with an OAuth session. The highest-priority *ready* one is
// used, the choice follows the secrets as they come and go, and it is in the audit record.
// Real loopback servers stand in for the provider, the gateway and the token endpoint.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { Registry } from '../../src/registry/registry.ts';
import type { RegistryProvider } from '../../src/registry/types.ts';
import { readAll, testBroker, type TestBroker } from '../helpers/broker.ts';
import { assertNoLeak, canary } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const acme: RegistryProvider = {
  provider: 'acme',
  vaultSecrets: { ACME_API_KEY: 'secret' },
  auth: { header: { header_name: 'x-api-key', value_template: '{{secret}}' } },
  alternatives: [
    {
      id: 'gateway',
      priority: 5,
      vaultSecrets: { ACME_GATEWAY_TOKEN: 'token' },
      auth: { header: { header_name: 'authorization', value_template: 'Bearer {{token}}' } },
      hosts: ['gw.acme.com'],
      pathPrefix: '/acme',
    },
    {
      id: 'session',
      priority: 10,
      vaultSecrets: { ACME_CLIENT_ID: 'client_id', ACME_CLIENT_SECRET: 'client_secret' },
      auth: { o_auth2: { grant_type: 'client_credentials', token_endpoint: 'https://auth.acme.com/token', client_auth: 'post' } },
    },
  ],
  hosts: ['api.acme.com'],
  capabilities: [{ id: 'acme/data', provider: 'acme', allow: { hosts: ['api.acme.com'], methods: ['GET'], pathPrefixes: ['/v1'] } }],
};

describe('credential alternatives', () => {
  let t: TestBroker;
  let api: Upstream;
  let gateway: Upstream;
  const apiKey = canary('ACMEAPIKEY');
  const gatewayToken = canary('ACMEGATEWAY');
  const clientSecret = canary('ACMECLIENTSECRET');
  const accessToken = canary('ACMEACCESS');
  const bodies: string[] = [];

  /** Invokes acme/data; returns where it went, with what, and the audit target. */
  const call = async (path = '/v1/items') => {
    const seen = { api: api.received.length, gateway: gateway.received.length };
    const r = await t.broker.invoke({ capability: 'acme/data', method: 'GET', path });
    bodies.push(await readAll(r.body));
    await r.done;
    await t.vault.audit.flush();
    const record = (await t.vault.audit.list({})).filter((x) => x.action === 'invoke').at(-1)!;
    const sent = [...api.received.slice(seen.api).filter((x) => !x.url.startsWith('/token')).map((x) => ({ to: 'api', ...x })), ...gateway.received.slice(seen.gateway).map((x) => ({ to: 'gateway', ...x }))];
    assert.equal(sent.length, 1);
    const s = sent[0]!;
    return { to: s.to, url: s.url, key: s.headers['x-api-key'] ?? null, authorization: s.headers.authorization ?? null, target: record.target, planned: r.planned };
  };

  before(async () => {
    api = await startUpstream();
    gateway = await startUpstream();
    api.handle('/token', (_req, res, body) => {
      const form = new URLSearchParams(body.toString('utf8'));
      res.setHeader('content-type', 'application/json');
      if (form.get('client_secret') !== clientSecret) {
        res.statusCode = 401;
        return void res.end('{"error":"invalid_client"}');
      }
      res.end(JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: 3600 }));
    });
    t = await testBroker(await Registry.fromProviders([acme]));
    await t.definitions.setEndpointOverride({ provider: 'acme', hosts: { 'api.acme.com': api.host, 'gw.acme.com': gateway.host }, tokenEndpoint: `http://${api.host}/token`, allowHttp: true, allowPrivateNetwork: true });
  });
  after(async () => {
    await t.close();
    await api.close();
    await gateway.close();
    for (const b of bodies) for (const v of [apiKey, gatewayToken, clientSecret, accessToken]) assertNoLeak(b, v, 'response body');
  });

  it('the main credential while it is the only ready one', async () => {
    await t.vault.createSecret({ name: 'ACME_API_KEY', value: Buffer.from(apiKey) });
    const r = await call();
    assert.deepEqual([r.to, r.url, r.key, r.authorization, r.target], ['api', '/v1/items', apiKey, null, 'credential:acme']);
    assert.equal(r.planned.credential, 'acme');
  });

  it('a higher-priority alternative takes over once ready: its own host and path prefix', async () => {
    await t.vault.createSecret({ name: 'ACME_GATEWAY_TOKEN', value: Buffer.from(gatewayToken) });
    const r = await call();
    assert.deepEqual([r.to, r.url, r.key, r.authorization, r.target], ['gateway', '/acme/v1/items', null, `Bearer ${gatewayToken}`, 'credential:acme:gateway']);
    assert.equal(r.planned.credential, 'acme:gateway');
  });

  it('a half-stored alternative is not ready, so it is passed over', async () => {
    await t.vault.createSecret({ name: 'ACME_CLIENT_ID', value: Buffer.from('acme-client') });
    assert.equal((await call()).target, 'credential:acme:gateway');
  });

  it('the top-priority session, once complete; removing its secret falls back', async () => {
    const secret = await t.vault.createSecret({ name: 'ACME_CLIENT_SECRET', value: Buffer.from(clientSecret) });
    const r = await call();
    assert.deepEqual([r.to, r.url, r.key, r.authorization, r.target], ['api', '/v1/items', null, `Bearer ${accessToken}`, 'credential:acme:session']);
    assert.equal(api.received.filter((x) => x.url.startsWith('/token')).length, 1);
    await t.vault.deleteSecret(secret.id);
    assert.equal((await call()).target, 'credential:acme:gateway');
    await t.vault.deleteSecret('ACME_GATEWAY_TOKEN');
    assert.equal((await call()).target, 'credential:acme');
  });

  it("every rule still applies to the request the caller addressed", async () => {
    await t.vault.createSecret({ name: 'ACME_GATEWAY_TOKEN', value: Buffer.from(gatewayToken) }).catch(() => {});
    const before = api.received.length + gateway.received.length;
    for (const [path, code] of [['/v2/items', 'PATH_NOT_ALLOWED'], ['/acme/v1/items', 'PATH_NOT_ALLOWED'], ['/v1/../admin', 'MALFORMED_PATH']] as const) {
      await assert.rejects(t.broker.invoke({ capability: 'acme/data', method: 'GET', path }), (e) => isAivaultError(e, code), path);
    }
    await assert.rejects(t.broker.invoke({ capability: 'acme/data', method: 'GET', url: 'https://gw.acme.com/v1/items' }), (e) => isAivaultError(e, 'HOST_NOT_ALLOWED'), 'the gateway host is the credential\'s, not the caller\'s');
    assert.equal(api.received.length + gateway.received.length, before, 'nothing was sent');
  });
});

describe('registry files with alternatives are checked like the rest', () => {
  const variants: Array<[string, (p: RegistryProvider) => void, RegExp]> = [
    ['duplicate alternative ids', (p) => p.alternatives!.push({ ...p.alternatives![0]!, vaultSecrets: { ACME_OTHER: 'token' } }), /alternatives\/2\/id: duplicate alternative id "gateway"/],
    ['a secret name shared with the main credential', (p) => (p.alternatives![0]!.vaultSecrets = { ACME_API_KEY: 'token' }), /alternatives\/0\/vaultSecrets\/ACME_API_KEY: ACME_API_KEY is already a secret of the main credential/],
    ['a wildcard host to send to', (p) => (p.alternatives![0]!.hosts = ['*.acme.com']), /alternatives\/0\/hosts\/0: must be a concrete host/],
    ['a dot segment in the path prefix', (p) => (p.alternatives![0]!.pathPrefix = '/acme/..'), /alternatives\/0\/pathPrefix/],
    ['a placeholder no secret fills', (p) => (p.alternatives![0]!.auth = { header: { header_name: 'authorization', value_template: 'Bearer {{other}}' } }), /alternatives\/0\/auth\/header\/value_template: uses \{\{other\}\}/],
    ['a plain-http token endpoint', (p) => ((p.alternatives![1]!.auth as { o_auth2: { token_endpoint: string } }).o_auth2.token_endpoint = 'http://auth.acme.com/token'), /alternatives\/1\/auth\/o_auth2\/token_endpoint: must be an https URL/],
    ['an unknown auth strategy', (p) => ((p.alternatives![0] as { auth: unknown }).auth = { cookie: {} }), /alternatives\/0\/auth: must be "basic", "mtls", or an object/],
    ['no priority', (p) => delete (p.alternatives![0] as { priority?: number }).priority, /alternatives\/0: .*priority/],
  ];
  for (const [name, mutate, message] of variants) {
    it(`refuses ${name}`, async () => {
      const p = JSON.parse(JSON.stringify(acme)) as RegistryProvider;
      mutate(p);
      await assert.rejects(Registry.fromProviders([p]), (e) => isAivaultError(e, 'REGISTRY_INVALID') && message.test(e.message));
    });
  }

  it('refuses a secret name another provider claims, through its alternative', async () => {
    const other: RegistryProvider = { ...JSON.parse(JSON.stringify(acme)), provider: 'other', vaultSecrets: { OTHER_KEY: 'secret' }, alternatives: [{ id: 'x', priority: 1, vaultSecrets: { ACME_API_KEY: 'token' }, auth: { header: { header_name: 'authorization', value_template: 'Bearer {{token}}' } } }], capabilities: [{ id: 'other/data', provider: 'other', allow: { hosts: ['api.acme.com'], methods: ['GET'], pathPrefixes: ['/v1'] } }] };
    await assert.rejects(Registry.fromProviders([acme, other]), (e) => isAivaultError(e, 'REGISTRY_INVALID') && /ACME_API_KEY is also claimed/.test(e.message));
  });
});
