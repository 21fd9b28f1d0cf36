// Three replicas (`aivault serve`, each its own process) on one PostgreSQL vault, as behind
// a load balancer: they share secrets, grants, nonces, rate budgets, the OAuth token cache
// and one audit chain. Owner changes come from yet another process (the CLI).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signRequest } from '../../src/policy/request-signature.ts';
import { assertNoLeak, canary } from '../helpers/cli.ts';
import { post, startCluster, type Cluster } from '../helpers/cluster.ts';
import { dropSchema, freshSchema, schemaUrl } from '../helpers/postgres.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('a cluster of daemons on PostgreSQL', () => {
  const schema = freshSchema('cluster');
  let c: Cluster;
  let up: Upstream;
  let tokenServer: Server;
  let tokenRequests = 0;
  const tokens: Record<string, string> = {};
  let signerId: string;
  const keys = generateKeyPairSync('ed25519');
  const key1 = canary('CLUSTER1');
  const key2 = canary('CLUSTER2');

  const invoke = (replica: number, agent: string, capability = 'api/data', path = '/v1/items') =>
    post(c.replicas[replica]!, '/v1/invoke', { authorization: `Bearer ${tokens[agent]}` }, JSON.stringify({ capability, method: 'GET', path }));

  before(async () => {
    up = await startUpstream();
    // A token endpoint that takes its time, so concurrent refreshes would overlap if allowed to.
    tokenServer = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        tokenRequests += 1;
        setTimeout(() => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ access_token: `cluster-access-${tokenRequests}`, token_type: 'bearer', expires_in: 3600 }));
        }, 300);
      });
    });
    await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
    const tokenUrl = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;

    c = await startCluster(schemaUrl(schema), 3);
    const ref = (await c.owner(['secrets', 'create', '--name', 'CLUSTER_KEY', '--value', key1])).trim();
    await c.owner(['credential', 'create', 'api', '--provider', 'api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network']);
    await c.owner(['capability', 'create', 'api/data', '--provider', 'api', '--credential', 'api', '--method', 'GET', '--method', 'POST', '--path', '/v1']);
    const id = (await c.owner(['secrets', 'create', '--name', 'SVC_ID', '--value', 'svc-client-id'])).trim();
    const secret = (await c.owner(['secrets', 'create', '--name', 'SVC_SECRET', '--value', canary('SVCSECRET')])).trim();
    await c.owner(['credential', 'create', 'svc', '--provider', 'svc', '--secret-ref', `client_id=${id}`, '--secret-ref', `client_secret=${secret}`, '--auth', 'o_auth2', '--grant-type', 'client_credentials', '--token-endpoint', tokenUrl, '--client-auth', 'post', '--host', up.host, '--allow-http', '--allow-private-network']);
    await c.owner(['capability', 'create', 'svc/data', '--provider', 'svc', '--credential', 'svc', '--method', 'GET', '--path', '/v1']);
    for (const name of ['bot', 'limited', 'doomed']) {
      tokens[name] = (JSON.parse(await c.owner(['agent', 'create', name, '--json'])) as { token: string }).token;
    }
    await c.owner(['grant', 'bot', 'api/data']);
    await c.owner(['grant', 'bot', 'svc/data']);
    await c.owner(['grant', 'doomed', 'api/data']);
    await c.owner(['grant', 'limited', 'api/data', '--rate', '6/hour']);
    const pub = join(c.vault.dir, '..', 'signer.pub');
    writeFileSync(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    signerId = (JSON.parse(await c.owner(['agent', 'create', 'signer', '--public-key', pub, '--json'])) as { id: string }).id;
    await c.owner(['grant', 'signer', 'api/data']);
  });

  after(async () => {
    for (const r of c.replicas) {
      assertNoLeak(r.log(), key1, 'replica log');
      assertNoLeak(r.log(), key2, 'replica log');
    }
    await c.stop();
    await up.close();
    tokenServer.close();
    await dropSchema(schema);
  });

  it('any replica serves any agent, injecting the shared secret', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await invoke(i, 'bot');
      assert.equal(r.status, 200, r.text);
      assert.equal(up.received.at(-1)!.headers.authorization, `Bearer ${key1}`);
    }
  });

  it('a nonce used on one replica is refused on another', async () => {
    const body = JSON.stringify({ capability: 'api/data', method: 'GET', path: '/v1/signed' });
    const headers = Object.fromEntries(signRequest({ method: 'POST', target: '/v1/invoke', headers: [['content-type', 'application/json']], body: Buffer.from(body) }, signerId, keys.privateKey));
    const first = await post(c.replicas[0]!, '/v1/invoke', headers, body);
    assert.equal(first.status, 200, first.text);
    for (const i of [1, 2]) {
      const replay = await post(c.replicas[i]!, '/v1/invoke', headers, body);
      assert.deepEqual([replay.status, replay.error], [401, 'REPLAY_DETECTED']);
    }
  });

  it('one rate budget across replicas: 6/hour allows 6 of 15 concurrent requests spread over three', async () => {
    const answers = await Promise.all(Array.from({ length: 15 }, (_, i) => invoke(i % 3, 'limited')));
    assert.equal(answers.filter((a) => a.status === 200).length, 6);
    assert.ok(answers.filter((a) => a.status !== 200).every((a) => a.status === 429 && a.error === 'RATE_LIMITED'));
  });

  it('a revocation by the owner applies on every replica at the next request', async () => {
    assert.equal((await invoke(1, 'doomed')).status, 200);
    await c.owner(['revoke-grant', 'doomed', 'api/data']);
    for (let i = 0; i < 3; i++) assert.deepEqual([(await invoke(i, 'doomed')).error], ['CAPABILITY_NOT_GRANTED']);
  });

  it('a rotation by the owner is injected by every replica at the next request', async () => {
    await c.owner(['secrets', 'rotate', 'CLUSTER_KEY', '--value', key2]);
    for (let i = 0; i < 3; i++) {
      assert.equal((await invoke(i, 'bot')).status, 200);
      assert.equal(up.received.at(-1)!.headers.authorization, `Bearer ${key2}`);
    }
  });

  it('30 concurrent OAuth invokes on three replicas cause exactly one token request', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => invoke(i % 3, 'bot', 'svc/data')));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(tokenRequests, 1);
    const seen = new Set(up.received.slice(-30).map((r) => r.headers.authorization));
    assert.deepEqual([...seen], ['Bearer cluster-access-1']);
  });

  it('concurrent invokes on all replicas leave one unbroken audit chain', async () => {
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => invoke(i % 3, 'bot')));
    assert.equal(answers.filter((a) => a.status === 200).length, 60);
    const verify = JSON.parse(await c.owner(['audit', 'verify', '--json'])) as { ok: boolean; count: number };
    assert.equal(verify.ok, true);
    const records = JSON.parse(await c.owner(['audit', 'list', '--json', '--limit', '100000'])) as Array<{ seq: number; action: string; decision: string; actor: string }>;
    assert.equal(records.length, verify.count);
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: records.length }, (_, i) => i + 1));
    // Every allowed invoke so far, from whichever replica, is in the one chain.
    assert.ok(records.filter((r) => r.action === 'invoke' && r.decision === 'allow').length >= 60 + 30 + 6 + 3 + 3 + 1);
  });
});
