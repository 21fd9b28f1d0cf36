// The hot path's reads: a request reads the vault's generation once and takes everything else
// from what was read at that generation (generation-cache.ts), so it costs one storage round
// trip besides its audit record; and a change made meanwhile applies to the very next request.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StorageCore } from '../../src/storage/core.ts';
import { chooseGatewayCapability } from '../../src/server/gateway-route.ts';
import { isAivaultError } from '../../src/errors.ts';
import { testBroker, type TestBroker } from '../helpers/broker.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

let t: TestBroker;
let upstream: Upstream;
/** Storage calls by method name, since the last reset. */
const calls = new Map<string, number>();

/** Counts every storage method called on `storage` (audit writes included, kept apart below). */
function countCalls(storage: StorageCore): void {
  for (let proto = Object.getPrototypeOf(storage); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const fn = (storage as unknown as Record<string, unknown>)[name];
      if (name === 'constructor' || typeof fn !== 'function' || Object.hasOwn(storage, name)) continue;
      Object.defineProperty(storage, name, {
        value: (...args: unknown[]) => {
          calls.set(name, (calls.get(name) ?? 0) + 1);
          return (fn as (...a: unknown[]) => unknown).apply(storage, args);
        },
      });
    }
  }
}

function readsBesidesAudit(): string[] {
  return [...calls].filter(([name]) => name !== 'writeAudit').flatMap(([name, n]) => Array<string>(n).fill(name));
}

before(async () => {
  upstream = await startUpstream();
  t = await testBroker();
  countCalls(t.vault.storage as unknown as StorageCore);
});
after(async () => {
  await t.close();
  await upstream.close();
});

/** One gateway request as the daemon serves it: token, capability choice, invoke. */
async function gatewayRequest(token: string, path = '/v1/things'): Promise<number> {
  const { agents, broker, reads } = t.services;
  const at = await reads.snapshot();
  const agent = await agents.authenticate(token, at);
  const capability = await chooseGatewayCapability(broker, agent, { provider: 'rt', path, query: [] }, 'GET', at);
  const res = await broker.invoke({ capability, method: 'GET', path }, { agent, at });
  for await (const _ of res.body) void _;
  await res.done;
  return res.status;
}

describe('storage round trips per request', () => {
  it('a warm gateway request reads the generation and nothing else', async () => {
    const id = await t.custom({ name: 'rt', auth: { header: { header_name: 'authorization', value_template: 'Bearer {{key}}' } }, secrets: { key: 'sk-rt-canary-0123456789' }, hosts: [upstream.host] });
    const { agent, token } = await t.services.agents.create('rt-agent');
    await t.services.agents.grant({ agent: agent.id, capability: id }, ['GET']);
    assert.equal(await gatewayRequest(token!), 200); // fills the cache
    calls.clear();
    for (let i = 0; i < 5; i++) assert.equal(await gatewayRequest(token!), 200);
    assert.deepEqual(readsBesidesAudit(), Array<string>(5).fill('generation'));
    assert.ok((calls.get('writeAudit') ?? 0) >= 1);
  });

  it('a revocation applies to the very next request', async () => {
    const { agent, token } = await t.services.agents.create('rt-revoked');
    await t.services.agents.grant({ agent: agent.id, capability: 'rt/api' }, ['GET']);
    assert.equal(await gatewayRequest(token!), 200);
    await t.services.agents.revoke(agent.id);
    await assert.rejects(gatewayRequest(token!), (err) => isAivaultError(err, 'AGENT_UNAUTHENTICATED'));
  });

  it('a grant withdrawn applies to the very next request', async () => {
    const { agent, token } = await t.services.agents.create('rt-ungranted');
    await t.services.agents.grant({ agent: agent.id, capability: 'rt/api' }, ['GET']);
    assert.equal(await gatewayRequest(token!), 200);
    await t.services.agents.revokeGrant(agent.id, 'rt/api');
    await assert.rejects(gatewayRequest(token!), (err) => isAivaultError(err, 'CAPABILITY_NOT_GRANTED'));
  });

  it('unknown tokens are not kept: the cache cannot be filled with guesses', async () => {
    calls.clear();
    for (let i = 0; i < 3; i++) await assert.rejects(gatewayRequest(`avt_guess${'x'.repeat(40)}`), (err) => isAivaultError(err, 'AGENT_UNAUTHENTICATED'));
    assert.equal(calls.get('findAgentByTokenHash'), 3);
  });
});
