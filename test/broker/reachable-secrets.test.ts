// An agent's scrub set, on a real vault: what it holds (every granted credential's values,
// kept versions and fixed injections; nothing the agent cannot send) and when it is rebuilt
// (a new generation, never per request).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ReachableSecrets } from '../../src/broker/reachable-secrets.ts';
import type { AgentRecord } from '../../src/storage/types.ts';
import { canary } from '../helpers/cli.ts';
import { testBroker, type TestBroker } from '../helpers/broker.ts';

describe("an agent's scrub set", () => {
  let t: TestBroker;
  let agent: AgentRecord;
  let reach: ReachableSecrets;
  const headerKey = canary('HEADER');
  const password = canary('PASSWORD');
  const ungranted = canary('UNGRANTED');
  const scrubber = async (own: string[] = []) => reach.scrubber(agent, 'global', await t.vault.storage.generation(), own);

  before(async () => {
    t = await testBroker();
    const hosts = ['api.example.com'];
    const a = await t.custom({ name: 'reacha', auth: { header: { header_name: 'authorization', value_template: 'Token {{secret}}' } }, secrets: { secret: headerKey }, hosts });
    const b = await t.custom({ name: 'reachb', auth: 'basic', secrets: { username: 'reach-user', password }, hosts });
    await t.custom({ name: 'reachc', auth: { query: { param_name: 'key' } }, secrets: { secret: ungranted }, hosts });
    ({ agent } = await t.services.agents.create('reacher'));
    for (const capability of [a, b]) await t.services.agents.grant({ agent: agent.id, capability }, ['GET', 'POST']);
    reach = new ReachableSecrets(t.vault, t.services.catalog, t.services.oauth);
  });
  after(() => t.close());

  it('holds every granted credential and what its strategy injects, and nothing the agent cannot send', async () => {
    const s = await scrubber();
    assert.ok(s.contains(`Token ${headerKey}`));
    assert.ok(s.contains(Buffer.from(`reach-user:${password}`).toString('base64')));
    assert.equal(s.contains(ungranted), false, 'a credential of a capability the agent is not granted');
  });

  it('is built once per generation; a request value it lacks widens it, once', async () => {
    const first = await scrubber();
    assert.equal(await scrubber([headerKey, `Token ${headerKey}`]), first, 'values already in the set: the same scrubber');
    const token = canary('TOKEN');
    const widened = await scrubber([token]);
    assert.notEqual(widened, first);
    assert.ok(widened.contains(token) && widened.contains(password));
    assert.equal(await scrubber([token]), widened);
  });

  it('applies a rotation and a revoked grant at the next lookup; a rotated value stays as a kept version', async () => {
    const before = await scrubber();
    const rotated = canary('ROTATED');
    const id = (await t.services.catalog.describeCredential('reacha')).bindings.get('secret')!;
    await t.vault.rotateSecret(id, Buffer.from(rotated));
    const after = await scrubber();
    assert.notEqual(after, before);
    assert.ok(after.contains(rotated) && after.contains(headerKey));

    await t.services.agents.revokeGrant(agent.id, 'reachb/api');
    const revoked = await scrubber();
    assert.equal(revoked.contains(password), false);
    assert.ok(revoked.contains(rotated));
  });
});
