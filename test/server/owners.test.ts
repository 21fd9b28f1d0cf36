// Owner identities: bootstrapped by init, signed owner calls over the daemon, never the last one removed.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { isAivaultError } from '../../src/errors.ts';
import { signRequest } from '../../src/policy/request-signature.ts';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { createOwnerClient } from '../../src/sdk/owner-client.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

describe('owners', () => {
  let v: TempVault;
  let d: RunningDaemon;
  let ownerId: string;
  let ownerKey: string;
  const second = generateKeyPairSync('ed25519');

  before(async () => {
    v = await tempVault();
    ownerKey = readFileSync(join(v.dir, 'owner.key'), 'utf8');
    ownerId = (JSON.parse((await v.cli(['owner', 'list', '--json'])).stdout) as Array<{ id: string }>)[0]!.id;
    d = await startDaemon(v, ['--socket', join(v.dir, 'o.sock')]);
  });
  after(async () => {
    await d.stop();
    v.cleanup();
  });

  it('init made the first owner; its private key is a 0600 file', () => {
    assert.equal(statSync(join(v.dir, 'owner.key')).mode & 0o777, 0o600);
    assert.match(ownerKey, /BEGIN PRIVATE KEY/);
  });

  it('a signed owner call manages the vault; secret values go in, never out; audited as that owner', async () => {
    const owner = createOwnerClient({ socketPath: d.socket!, ownerId, privateKey: ownerKey });
    const value = canary('OWNER');
    try {
      const secret = await owner.call<{ ref: string; name: string }>('secrets.create', { name: 'VIA_DAEMON', value });
      assert.equal(secret.name, 'VIA_DAEMON');
      const agent = await owner.call<{ id: string; token: string }>('agent.create', { name: 'made-by-owner' });
      assert.match(agent.token, /^avt_/);
      const listed = await owner.call<unknown[]>('secrets.list');
      assert.equal(JSON.stringify(listed).includes(value), false);
      assert.deepEqual((await owner.call<{ ok: boolean }>('audit.verify')).ok, true);
    } finally {
      await owner.close();
    }
    const records = JSON.parse((await v.cli(['audit', 'list', '--json'])).stdout) as Array<{ action: string; actor: string }>;
    assert.ok(records.some((r) => r.action === 'agent.create' && r.actor === `owner:${ownerId}`));
    assert.ok(records.some((r) => r.action === 'secret.create' && r.actor === `owner:${ownerId}`));
  });

  it('the whole setup over the daemon: credential, capability, agent, grant, then the agent invokes', async () => {
    const up = await startUpstream();
    const owner = createOwnerClient({ socketPath: d.socket!, ownerId, privateKey: ownerKey });
    try {
      const secret = await owner.call<{ ref: string }>('secrets.create', { name: 'REMOTE_KEY', value: 'remote-key-0123456789' });
      await owner.call('credential.create', { name: 'remote', provider: 'remote', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: secret.ref }, hosts: [up.host], allowHttp: true, allowPrivateNetwork: true });
      await owner.call('capability.create', { id: 'remote/api', provider: 'remote', credential: 'remote', methods: ['GET'], pathPrefixes: ['/v1'] });
      const agent = await owner.call<{ token: string }>('agent.create', { name: 'remote-bot' });
      await owner.call('grant.create', { agent: 'remote-bot', capabilities: ['remote/api'], rate: '100/min' });
      const client = createAgentClient({ socketPath: d.socket!, token: agent.token });
      const res = await client.invoke({ capability: 'remote/api', path: '/v1/x' });
      assert.equal(res.status, 200);
      await res.text();
      await client.close();
      assert.equal(up.received.at(-1)!.headers['x-key'], 'remote-key-0123456789');
      await assert.rejects(owner.call('credential.create', { name: 'bad', provider: 'bad', auth: { header: { header_name: 'x', value_template: '{{nope}}' } }, secretRefs: { secret: secret.ref }, hosts: ['x.example.com'] }), (e) => isAivaultError(e, 'INVALID_ARGUMENT'));
      const audit = await owner.call<Array<{ action: string }>>('audit.list', { limit: 500 });
      assert.ok(audit.some((r) => r.action === 'capability.create'));
    } finally {
      await owner.close();
      await up.close();
    }
  });

  it('the CLI signs owner commands for you when given the owner key and the daemon address (no vault key needed)', async () => {
    const env = { AIVAULT_SOCKET: d.socket!, AIVAULT_OWNER_ID: ownerId, AIVAULT_OWNER_KEY: join(v.dir, 'owner.key'), AIVAULT_DIR: '/nonexistent/vault', AIVAULT_MASTER_KEY: '' };
    const value = canary('CLIOWNER');
    const created = await v.cli(['secrets', 'create', '--name', 'CLI_REMOTE', '--value-stdin'], { env, input: value });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout.trim(), /^vault:secret:/);
    const agent = await v.cli(['agent', 'create', 'cli-remote-bot', '--json'], { env });
    assert.equal(agent.code, 0, agent.stderr);
    assert.match((JSON.parse(agent.stdout) as { token: string }).token, /^avt_/);
    const list = await v.cli(['secrets', 'list', '--json'], { env });
    assert.ok((JSON.parse(list.stdout) as Array<{ name: string }>).some((x) => x.name === 'CLI_REMOTE'));
    // Contexts and group attachments, through the daemon too.
    const ctx = await v.cli(['agent', 'context', 'cli-remote-bot', '--workspace-id', 'acme', '--group-id', 'ml', '--json'], { env });
    assert.equal(ctx.code, 0, ctx.stderr);
    assert.equal((JSON.parse(ctx.stdout) as { context: string }).context, 'group:acme/ml');
    const attached = await v.cli(['secrets', 'attach-group', 'CLI_REMOTE', '--workspace-id', 'acme', '--group-id', 'ml', '--json'], { env });
    assert.equal(attached.code, 0, attached.stderr);
    assert.deepEqual((JSON.parse(attached.stdout) as { groups: string[] }).groups, ['acme/ml']);
    const again = await v.cli(['secrets', 'attach-group', 'CLI_REMOTE', '--workspace-id', 'acme', '--group-id', 'ml', '--json'], { env });
    assert.equal(JSON.parse(again.stderr).error.code, 'GROUP_ALREADY_ATTACHED');
    const detached = await v.cli(['secrets', 'detach-group', 'CLI_REMOTE', '--workspace-id', 'acme', '--group-id', 'ml', '--json'], { env });
    assert.deepEqual((JSON.parse(detached.stdout) as { groups: string[] }).groups, []);
    for (const out of [created.stdout, created.stderr, list.stdout]) assert.equal(out.includes(value), false);
    const wrongKey = join(v.dir, '..', 'wrong.key');
    writeFileSync(wrongKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const verify = await v.cli(['audit', 'verify', '--json'], { env });
    assert.equal(JSON.parse(verify.stdout).ok, true);
    const deleted = await v.cli(['secrets', 'delete', 'CLI_REMOTE', '--yes', '--json'], { env });
    assert.equal(deleted.code, 0, deleted.stderr);
    const forged = await v.cli(['agent', 'create', 'forged', '--json'], { env: { ...env, AIVAULT_OWNER_KEY: wrongKey } });
    assert.equal(JSON.parse(forged.stderr).error.code, 'SIGNATURE_INVALID');
  });

  it('agents can never use owner routes, with a token or with their own signature', async () => {
    const created = JSON.parse((await v.cli(['agent', 'create', 'sneaky', '--json'])).stdout) as { token: string };
    const dispatcher = new Agent({ connect: { socketPath: d.socket! } });
    const body = JSON.stringify({ op: 'agent.list', args: {} });
    const withToken = await request('http://aivault/v1/owner/rpc', { method: 'POST', headers: { authorization: `Bearer ${created.token}` }, body, dispatcher });
    assert.equal(withToken.statusCode, 403);
    assert.equal(withToken.headers['x-aivault-error'], 'OWNER_ROUTE');
    await withToken.body.dump();
    const agentKey = generateKeyPairSync('ed25519');
    const pub = join(v.dir, '..', 'sneaky2.pub');
    writeFileSync(pub, agentKey.publicKey.export({ type: 'spki', format: 'pem' }));
    const signer = JSON.parse((await v.cli(['agent', 'create', 'sneaky2', '--public-key', pub, '--json'])).stdout) as { id: string };
    const headers = signRequest({ method: 'POST', target: '/v1/owner/rpc', headers: [['content-type', 'application/json']], body: Buffer.from(body) }, signer.id, agentKey.privateKey);
    const withSignature = await request('http://aivault/v1/owner/rpc', { method: 'POST', headers: Object.fromEntries(headers), body, dispatcher });
    assert.equal(withSignature.statusCode, 403);
    await withSignature.body.dump();
    // A replayed owner call is refused too.
    const ownerHeaders = signRequest({ method: 'POST', target: '/v1/owner/rpc', headers: [['content-type', 'application/json']], body: Buffer.from(body) }, ownerId, ownerKey);
    const first = await request('http://aivault/v1/owner/rpc', { method: 'POST', headers: Object.fromEntries(ownerHeaders), body, dispatcher });
    assert.equal(first.statusCode, 200);
    await first.body.dump();
    const replay = await request('http://aivault/v1/owner/rpc', { method: 'POST', headers: Object.fromEntries(ownerHeaders), body, dispatcher });
    assert.equal(replay.headers['x-aivault-error'], 'REPLAY_DETECTED');
    await replay.body.dump();
    await dispatcher.close();
  });

  it('owner RPC errors answer the status of their category: not found 404, conflict 409, bad input 400', async () => {
    const dispatcher = new Agent({ connect: { socketPath: d.socket! } });
    const call = async (op: string, args: unknown) => {
      const body = JSON.stringify({ op, args });
      const headers = signRequest({ method: 'POST', target: '/v1/owner/rpc', headers: [['content-type', 'application/json']], body: Buffer.from(body) }, ownerId, ownerKey);
      const res = await request('http://aivault/v1/owner/rpc', { method: 'POST', headers: Object.fromEntries(headers), body, dispatcher });
      await res.body.dump();
      return [res.statusCode, res.headers['x-aivault-error']];
    };
    try {
      assert.deepEqual(await call('secrets.delete', { secret: 'NO_SUCH_SECRET' }), [404, 'SECRET_NOT_FOUND']);
      assert.deepEqual(await call('agent.revoke', { agent: 'no-such-agent' }), [404, 'AGENT_NOT_FOUND']);
      assert.deepEqual(await call('secrets.create', { name: 'STATUS_TWICE', value: 'status-value-0123' }), [200, undefined]);
      assert.deepEqual(await call('secrets.create', { name: 'STATUS_TWICE', value: 'status-value-0123' }), [409, 'SECRET_ALREADY_EXISTS']);
      assert.deepEqual(await call('secrets.create', { name: 'bad name!', value: 'status-value-0123' }), [400, 'INVALID_NAME']);
    } finally {
      await dispatcher.close();
    }
  });

  it('an owner adds another; a removed owner is refused on its next call; the last owner stays', async () => {
    const first = createOwnerClient({ socketPath: d.socket!, ownerId, privateKey: ownerKey });
    const added = await first.call<{ id: string }>('owner.add', { name: 'second', publicKey: second.publicKey.export({ type: 'spki', format: 'pem' }) });
    const secondClient = createOwnerClient({ socketPath: d.socket!, ownerId: added.id, privateKey: second.privateKey });
    try {
      assert.equal((await secondClient.call<unknown[]>('owner.list')).length, 2);
      await secondClient.call('owner.remove', { owner: ownerId });
      await assert.rejects(first.call('owner.list'), (e) => isAivaultError(e, 'OWNER_ROUTE'));
      await assert.rejects(secondClient.call('owner.remove', { owner: 'second' }), (e) => isAivaultError(e, 'LAST_OWNER'));
      const cli = await v.cli(['owner', 'remove', 'second', '--json']);
      assert.equal(cli.code, 4);
      assert.equal(JSON.parse(cli.stderr).error.code, 'LAST_OWNER');
    } finally {
      await first.close();
      await secondClient.close();
    }
  });
});
