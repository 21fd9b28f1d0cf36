// A running daemon serves an updated credential and capability from the very next request:
// the update bumps the vault's generation, so its per-generation caches (the broker's prepared
// capabilities, the reachable secrets) rebuild, and the old host and secret are out of reach.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { createAgentClient, type AgentClient } from '../../src/sdk/agent-client.ts';
import { createOwnerClient, type OwnerClient } from '../../src/sdk/owner-client.ts';
import { canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('updates through a running daemon', () => {
  const FIRST = canary('FIRST');
  const SECOND = canary('SECOND');
  let v: TempVault;
  let daemon: RunningDaemon;
  let owner: OwnerClient;
  let agent: AgentClient;
  let oldUp: Upstream, newUp: Upstream;

  before(async () => {
    [v, oldUp, newUp] = await Promise.all([tempVault(), startUpstream(), startUpstream()]);
    daemon = await startDaemon(v, ['--socket', join(v.dir, 'update.sock')]);
    const ownerId = (JSON.parse((await v.cli(['owner', 'list', '--json'])).stdout) as Array<{ id: string }>)[0]!.id;
    owner = createOwnerClient({ socketPath: daemon.socket!, ownerId, privateKey: readFileSync(join(v.dir, 'owner.key'), 'utf8') });
  });
  after(async () => {
    await agent?.close();
    await owner?.close();
    await daemon?.stop();
    await Promise.all([oldUp?.close(), newUp?.close()]);
    v?.cleanup();
  });

  /** What the upstream saw of one request as the agent, or the error code it was refused with. */
  async function invoke(host?: string): Promise<number | string> {
    try {
      const res = await agent.invoke({ capability: 'acme/api', path: '/v1/x', ...(host ? { host } : {}) });
      await res.text();
      return res.status;
    } catch (err) {
      if (isAivaultError(err)) return err.code;
      throw err;
    }
  }

  it('the next request goes to the new host with the new secret; the old host is refused', async () => {
    const first = ((await owner.call('secrets.create', { name: 'ACME_FIRST', value: FIRST })) as { ref: string }).ref;
    const second = ((await owner.call('secrets.create', { name: 'ACME_SECOND', value: SECOND })) as { ref: string }).ref;
    const network = { allowHttp: true, allowPrivateNetwork: true };
    await owner.call('credential.create', { name: 'acme', provider: 'acme', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: first }, hosts: [oldUp.host], ...network });
    await owner.call('capability.create', { id: 'acme/api', provider: 'acme', credential: 'acme', methods: ['GET'], pathPrefixes: ['/v1'] });
    const { token } = (await owner.call('agent.create', { name: 'bot' })) as { token: string };
    await owner.call('grant.create', { agent: 'bot', capabilities: ['acme/api'] });
    agent = createAgentClient({ socketPath: daemon.socket!, token });

    assert.equal(await invoke(), 200);
    assert.equal(oldUp.received.at(-1)!.headers['x-key'], FIRST);

    // Widen, move the capability, narrow: the daemon has served acme/api (its caches hold it).
    await owner.call('credential.update', { name: 'acme', hosts: [oldUp.host, newUp.host] });
    await owner.call('capability.update', { id: 'acme/api', hosts: [newUp.host] });
    await owner.call('credential.update', { name: 'acme', hosts: [newUp.host], secretRefs: { secret: second } });

    const seenByOld = oldUp.received.length;
    assert.equal(await invoke(), 200);
    assert.equal(newUp.received.length, 1);
    assert.equal(newUp.received[0]!.headers['x-key'], SECOND);
    assert.equal(await invoke(oldUp.host), 'HOST_NOT_ALLOWED');
    assert.equal(oldUp.received.length, seenByOld, 'the old host got nothing more');

    // The old secret is no longer the credential's: the scrubber of its responses moved on too.
    newUp.handle('/v1/x', (_req, res) => void res.end(`echo ${FIRST} ${SECOND}`));
    const res = await agent.invoke({ capability: 'acme/api', path: '/v1/x' });
    const body = await res.text();
    assert.equal(body.includes(SECOND), false, 'the secret in use is scrubbed');
  });
});
