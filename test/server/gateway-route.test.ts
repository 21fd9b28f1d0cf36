// A gateway request that no capability the agent holds serves is refused before the broker
// admits anything; it must still leave its deny record, as a refused invoke does.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { chooseGatewayCapability } from '../../src/server/gateway-route.ts';
import { testBroker, type TestBroker } from '../helpers/broker.ts';

let t: TestBroker;
before(async () => {
  t = await testBroker();
});
after(() => t.close());

describe('gateway capability choice', () => {
  it('records every refusal: an ungranted provider, a path or a method outside the grant', async () => {
    const id = await t.custom({ name: 'gwr', auth: { header: { header_name: 'x-key', value_template: '{{k}}' } }, secrets: { k: 'gwr-canary-0123456789' }, hosts: ['127.0.0.1:9'], methods: ['GET'], paths: ['/v1'] });
    const { agent } = await t.services.agents.create('gwr-agent');
    await t.services.agents.grant({ agent: agent.id, capability: id }, ['GET']);
    const tries = [
      { provider: 'nosuch', method: 'GET', path: '/v1/x' },
      { provider: 'gwr', method: 'GET', path: '/v2/probe' },
      { provider: 'gwr', method: 'DELETE', path: '/v1/x' },
    ];
    for (const [i, tried] of tries.entries()) {
      const at = await t.services.reads.snapshot();
      await assert.rejects(chooseGatewayCapability(t.broker, agent, { provider: tried.provider, path: tried.path, query: [] }, tried.method, at, i === 2), (e) => isAivaultError(e, 'CAPABILITY_NOT_GRANTED'));
    }
    assert.equal(await chooseGatewayCapability(t.broker, agent, { provider: 'gwr', path: '/v1/x', query: [] }, 'GET', await t.services.reads.snapshot()), id);
    await t.vault.audit.flush();
    const denied = (await t.vault.audit.list()).filter((r) => r.actor === `agent:${agent.id}` && r.decision === 'deny');
    assert.deepEqual(
      denied.map((r) => [r.action, r.capability, r.method, r.path, r.reason]),
      [
        ['invoke', 'nosuch/*', 'GET', '/v1/x', 'CAPABILITY_NOT_GRANTED'],
        ['invoke', 'gwr/*', 'GET', '/v2/probe', 'CAPABILITY_NOT_GRANTED'],
        ['websocket', 'gwr/*', 'DELETE', '/v1/x', 'CAPABILITY_NOT_GRANTED'],
      ],
    );
  });
  it('takes the deepest prefix by segments (`/ws` over `/`), and for an upgrade a capability that allows WebSockets', async () => {
    const any = await t.custom({ name: 'gwd', auth: { header: { header_name: 'x-key', value_template: '{{k}}' } }, secrets: { k: 'gwd-canary-0123456789' }, hosts: ['127.0.0.1:9'], methods: ['GET'], paths: ['/'] });
    const base = { provider: 'gwd', credential: 'gwd', methods: ['GET'], hosts: [] };
    await t.services.definitions.createCapability({ ...base, id: 'gwd/ws', pathPrefixes: ['/ws'], websocket: true });
    await t.services.definitions.createCapability({ ...base, id: 'gwd/stream', pathPrefixes: ['/'], websocket: true });
    const { agent } = await t.services.agents.create('gwd-agent');
    for (const id of [any, 'gwd/ws', 'gwd/stream']) await t.services.agents.grant({ agent: agent.id, capability: id }, ['GET']);
    const choose = async (path: string, websocket = false) => chooseGatewayCapability(t.broker, agent, { provider: 'gwd', path, query: [] }, 'GET', await t.services.reads.snapshot(), websocket);
    assert.equal(await choose('/ws/x'), 'gwd/ws');
    assert.equal(await choose('/ws/x', true), 'gwd/ws');
    assert.equal(await choose('/other', true), 'gwd/stream');
  });
});
