// `grant` with several capabilities and PROVIDER/*, as the owner makes it through the
// daemon's signed RPC and as the agent then meets it on /v1/invoke and the gateway, against a
// real daemon, a real vault and a loopback upstream. PROVIDER/* grants what the provider has
// when the grant is made: a capability created later is not granted until named.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { createOwnerClient, type OwnerClient } from '../../src/sdk/owner-client.ts';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

interface GrantResult {
  agent: string;
  grants: Array<{ capability: string; methods: string[] | null; expiresAt: string | null; approve: string | null; rate: { count: number } | null }>;
  skipped: string[];
  kept: string[];
  warnings: Array<{ capability: string; missing: string[]; outOfScope: string[] }>;
}

describe('grant: several capabilities and PROVIDER/*, through the daemon', () => {
  let v: TempVault;
  let up: Upstream;
  let daemon: RunningDaemon;
  let owner: OwnerClient;
  let token: string;
  let ownerId: string;

  const grant = (args: Record<string, unknown>) => owner.call<GrantResult>('grant.create', { agent: 'bot', ...args });
  const capability = (id: string, methods: string[], path: string) => owner.call('capability.create', { id, provider: 'acme', credential: 'acme', methods, pathPrefixes: [path] });

  /** The agent's request, on /v1/invoke or the gateway: the status, or aivault's refusal code. */
  async function asAgent(how: 'invoke' | 'gateway', capabilityId: string, method: string, path: string): Promise<number | string> {
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const res =
      how === 'invoke'
        ? await fetch(`${daemon.url}/v1/invoke`, { method: 'POST', headers, body: JSON.stringify({ capability: capabilityId, method, path }) })
        : await fetch(`${daemon.url}/gw/acme${path}`, { method, headers, ...(method === 'GET' ? {} : { body: '{}' }) });
    await res.arrayBuffer();
    return res.headers.get('x-aivault-error') ?? res.status;
  }

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    daemon = await startDaemon(v, ['--listen', '127.0.0.1:0', '--socket', join(v.dir, 'g.sock')]);
    ownerId = (JSON.parse((await v.cli(['owner', 'list', '--json'])).stdout) as Array<{ id: string }>)[0]!.id;
    owner = createOwnerClient({ socketPath: daemon.socket!, ownerId, privateKey: readFileSync(join(v.dir, 'owner.key'), 'utf8') });
    const secret = await owner.call<{ ref: string }>('secrets.create', { name: 'ACME_KEY', value: 'acme-key-0123456789' });
    await owner.call('credential.create', { name: 'acme', provider: 'acme', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: secret.ref }, hosts: [up.host], allowHttp: true, allowPrivateNetwork: true });
    await capability('acme/read', ['GET', 'POST'], '/v1/read');
    await capability('acme/write', ['POST'], '/v1/write');
  });
  after(async () => {
    await owner?.close();
    await daemon?.stop();
    await up?.close();
    v?.cleanup();
  });

  it('acme/* grants what acme has now, on the same terms; one created later is not granted; revoking acme/* takes them all', async () => {
    token = (await owner.call<{ token: string }>('agent.create', { name: 'bot' })).token;
    const first = await grant({ capabilities: ['acme/*'], methods: ['get'] });
    assert.deepEqual(first.grants.map((g) => [g.capability, g.methods]), [['acme/read', ['GET']]]);
    assert.deepEqual([first.skipped, first.kept, first.warnings], [['acme/write'], [], []], 'acme/write allows no GET');
    assert.equal(await asAgent('invoke', 'acme/read', 'GET', '/v1/read'), 200);
    assert.equal(await asAgent('gateway', '', 'GET', '/v1/read/x'), 200);
    assert.equal(await asAgent('invoke', 'acme/read', 'POST', '/v1/read'), 'METHOD_NOT_ALLOWED');
    assert.equal(await asAgent('gateway', '', 'POST', '/v1/write'), 'CAPABILITY_NOT_GRANTED');

    // Present, not future: a capability of acme made after the grant is not the agent's.
    await capability('acme/later', ['GET'], '/v1/later');
    assert.equal(await asAgent('invoke', 'acme/later', 'GET', '/v1/later'), 'CAPABILITY_NOT_GRANTED');
    assert.equal(await asAgent('gateway', '', 'GET', '/v1/later'), 'CAPABILITY_NOT_GRANTED');

    // Granting acme/* again adds what is new and keeps what the agent holds as it is (GET only).
    const again = await grant({ capabilities: ['acme/*'] });
    assert.deepEqual([again.grants.map((g) => [g.capability, g.methods]), again.kept], [[['acme/later', null], ['acme/write', null]], ['acme/read']]);
    assert.equal(await asAgent('gateway', '', 'GET', '/v1/later'), 200);
    assert.equal(await asAgent('gateway', '', 'POST', '/v1/write'), 200);
    assert.equal(await asAgent('invoke', 'acme/read', 'POST', '/v1/read'), 'METHOD_NOT_ALLOWED', 'the pattern did not widen the grant it found');

    // The daemon keeps per-generation caches: the revocation still applies to the next request.
    const revoked = await owner.call<{ revoked: string[] }>('grant.revoke', { agent: 'bot', capabilities: ['acme/*'] });
    assert.deepEqual(revoked.revoked.sort(), ['acme/later', 'acme/read', 'acme/write']);
    assert.equal(await asAgent('gateway', '', 'GET', '/v1/read'), 'CAPABILITY_NOT_GRANTED');
    assert.equal(await asAgent('invoke', 'acme/later', 'GET', '/v1/later'), 'CAPABILITY_NOT_GRANTED');
    await owner.call('capability.delete', { id: 'acme/later' });
  });

  it('several capabilities: all or none, one audit record each, the same terms on each', async () => {
    await owner.call('agent.create', { name: 'bot2' });
    const as2 = (args: Record<string, unknown>) => owner.call<GrantResult>('grant.create', { agent: 'bot2', ...args });
    const refused = (args: Record<string, unknown>, code: 'CAPABILITY_NOT_FOUND' | 'PROVIDER_NOT_FOUND' | 'INVALID_ARGUMENT') => assert.rejects(as2(args), (e) => isAivaultError(e, code), code);
    await refused({ capabilities: ['acme/read', 'acme/nope'] }, 'CAPABILITY_NOT_FOUND');
    await refused({ capabilities: ['acme/read', 'nope/*'] }, 'PROVIDER_NOT_FOUND');
    await refused({ capabilities: ['acme/read', '*'] }, 'INVALID_ARGUMENT');
    await refused({ capabilities: ['acme/read', 'acme/write'], methods: ['GET'] }, 'INVALID_ARGUMENT');
    await refused({ capabilities: ['acme/read', 'acme/write'], rate: '1/fortnight' }, 'INVALID_ARGUMENT');
    // Named, a capability's terms must fit it, even when a pattern in the same command would skip it.
    await refused({ capabilities: ['acme/*', 'acme/write'], methods: ['GET'] }, 'INVALID_ARGUMENT');
    assert.deepEqual(await owner.call('grant.list', { agent: 'bot2' }), [], 'nothing granted by a refused command');
    const { seq } = await owner.call<{ seq: number }>('audit.head', {});
    const made = await as2({ capabilities: ['acme/read', 'acme/write'], rate: '10/min', expires: '1h', approve: 'first' });
    const expiresAt = made.grants[0]!.expiresAt;
    assert.ok(expiresAt);
    assert.deepEqual(made.grants.map((g) => [g.capability, g.rate?.count, g.approve, g.expiresAt]), [['acme/read', 10, 'first', expiresAt], ['acme/write', 10, 'first', expiresAt]]);
    const records = await owner.call<Array<{ action: string; target: string; actor: string }>>('audit.list', { afterSeq: seq });
    assert.deepEqual(records.filter((r) => r.action === 'grant.create').map((r) => r.target.split(' ')[1]), ['capability:acme/read', 'capability:acme/write']);
  });

  it("a grant made by name keeps its terms when a pattern covers it later; in one command, the named one's terms win", async () => {
    await owner.call('agent.create', { name: 'bot3' });
    const as3 = (args: Record<string, unknown>) => owner.call<GrantResult>('grant.create', { agent: 'bot3', ...args });
    await as3({ capabilities: ['acme/write'], approve: 'each' });
    const covered = await as3({ capabilities: ['acme/*'], expires: '1h' });
    assert.deepEqual([covered.grants.map((g) => g.capability), covered.kept], [['acme/read'], ['acme/write']]);
    const grants = new Map((await owner.call<GrantResult['grants']>('grant.list', { agent: 'bot3' })).map((g) => [g.capability, g]));
    assert.deepEqual([grants.get('acme/write')!.approve, grants.get('acme/write')!.expiresAt], ['each', null], 'the approval the owner asked for stays');
    // Named again, it is replaced: the owner chose this capability's terms.
    const named = await as3({ capabilities: ['acme/*', 'acme/write'], methods: ['POST'] });
    assert.deepEqual([named.grants.map((g) => [g.capability, g.approve, g.methods]), named.kept], [[['acme/write', null, ['POST']]], ['acme/read']]);
  });

  it('the CLI warns about each granted capability that is not ready, saying what is missing, and still grants it', async () => {
    const env = { AIVAULT_SOCKET: daemon.socket!, AIVAULT_OWNER_ID: ownerId, AIVAULT_OWNER_KEY: join(v.dir, 'owner.key') };
    // acme/read's key is global (serves a workspace); other/api's lives in another workspace.
    const other = await owner.call<{ ref: string }>('secrets.create', { name: 'OTHER_KEY', value: 'other-key-0123456789', scope: 'workspace:elsewhere' });
    await owner.call('credential.create', { name: 'other', provider: 'other', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: other.ref }, hosts: [up.host], allowHttp: true, allowPrivateNetwork: true });
    await owner.call('capability.create', { id: 'other/api', provider: 'other', credential: 'other', methods: ['GET'], pathPrefixes: ['/v1'] });
    await owner.call('agent.create', { name: 'ws-bot', context: 'workspace:w' });
    const r = await v.cli(['grant', 'ws-bot', 'acme/read', 'other/api', 'trello/*'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^granted 6 capabilities to ws-bot: acme\/read, other\/api, trello\/boards, trello\/cards, trello\/lists, trello\/me\n$/);
    assert.match(r.stderr, /warning: not ready \(not for this context: OTHER_KEY@workspace:elsewhere\), so refused to the agent until then: other\/api\n/);
    assert.match(r.stderr, /warning: not ready \(missing TRELLO_API_KEY, TRELLO_TOKEN\), so refused to the agent until then: trello\/boards, trello\/cards, trello\/lists, trello\/me\n/);
    assert.match(r.stderr, /trello\/\*: the capabilities as they are now; one added later needs its own grant/);
    assert.doesNotMatch(r.stderr, /acme\/read/, 'a ready capability draws no warning');
  });
});
