// Agents that sign their requests with Ed25519 instead of holding a token.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { isAivaultError } from '../../src/errors.ts';
import { signRequest } from '../../src/policy/request-signature.ts';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('Ed25519-signed agent requests', () => {
  let v: TempVault;
  let up: Upstream;
  let d: RunningDaemon;
  let agentId: string;
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const dispatcher = () => new Agent({ connect: { socketPath: d.socket! } });
  const send = (headers: Array<[string, string]>, body: string, target = '/v1/invoke') =>
    request(`http://aivault${target}`, { method: 'POST', headers: Object.fromEntries(headers), body, dispatcher: dispatcher() });
  const signed = (body: string, opts: { now?: number; nonce?: string; key?: typeof privateKey; extra?: Array<[string, string]> } = {}) =>
    signRequest({ method: 'POST', target: '/v1/invoke', headers: [['content-type', 'application/json'], ...(opts.extra ?? [])], body: Buffer.from(body) }, agentId, opts.key ?? privateKey, opts.now, opts.nonce);
  const outcome = async (res: Awaited<ReturnType<typeof send>>) => {
    await res.body.dump();
    return res.statusCode === 200 ? 'OK' : String(res.headers['x-aivault-error']);
  };

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    const ref = (await v.cli(['secrets', 'create', '--name', 'SIGNED_KEY', '--value', 'signed-key-0123456789'])).stdout.trim();
    for (const args of [
      ['credential', 'create', 'api', '--provider', 'api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', up.host, '--allow-http', '--allow-private-network'],
      ['capability', 'create', 'api/data', '--provider', 'api', '--credential', 'api', '--method', 'POST', '--method', 'GET', '--path', '/v1'],
    ]) assert.equal((await v.cli(args)).code, 0);
    const keyFile = join(v.dir, '..', 'agent.pub');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const created = await v.cli(['agent', 'create', 'signer', '--public-key', keyFile, '--json']);
    const parsed = JSON.parse(created.stdout) as { id: string; token?: string };
    assert.equal(parsed.token, undefined, 'a key-holding agent gets no token');
    agentId = parsed.id;
    assert.equal((await v.cli(['grant', 'signer', 'api/data'])).code, 0);
    d = await startDaemon(v, ['--socket', join(v.dir, 's.sock')]);
  });
  after(async () => {
    await d.stop();
    await up.close();
    v.cleanup();
  });

  it('the SDK signs every request; the daemon accepts it', async () => {
    const c = createAgentClient({ socketPath: d.socket!, agentId, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string });
    try {
      const res = await c.invoke({ capability: 'api/data', method: 'POST', path: '/v1/items', body: '{"a":1}', headers: { 'x-trace': 't1' } });
      assert.equal(res.status, 200);
      await res.text();
      assert.equal(up.received.at(-1)!.headers['x-key'], 'signed-key-0123456789');
      assert.equal(up.received.at(-1)!.headers['x-aivault-signature'], undefined);
      assert.deepEqual((await c.capabilities()).map((x) => x.id), ['api/data']);
    } finally {
      await c.close();
    }
  });

  it('refuses a replay, a stale or future timestamp, a re-signed body, an unsigned header and a wrong key', async () => {
    const body = JSON.stringify({ capability: 'api/data', path: '/v1/x' });
    const headers = signed(body);
    assert.equal(await outcome(await send(headers, body)), 'OK');
    assert.equal(await outcome(await send(headers, body)), 'REPLAY_DETECTED');
    assert.equal(await outcome(await send(signed(body, { now: Date.now() - 10 * 60_000 }), body)), 'CLOCK_SKEW');
    assert.equal(await outcome(await send(signed(body, { now: Date.now() + 10 * 60_000 }), body)), 'CLOCK_SKEW');
    const other = JSON.stringify({ capability: 'api/data', path: '/v1/other' });
    assert.equal(await outcome(await send(signed(body), other)), 'SIGNATURE_INVALID');
    assert.equal(await outcome(await send([...signed(body), ['x-extra', 'smuggled']], body)), 'SIGNATURE_INVALID');
    assert.equal(await outcome(await send(signed(body, { key: other_key() }), body)), 'SIGNATURE_INVALID');
  });

  it('records a nonce only after its signature verifies: a forger cannot burn it', async () => {
    const body = JSON.stringify({ capability: 'api/data', path: '/v1/y' });
    const nonce = 'forged-nonce-0123456789abcdef';
    assert.equal(await outcome(await send(signed(body, { nonce, key: other_key() }), body)), 'SIGNATURE_INVALID');
    assert.equal(await outcome(await send(signed(body, { nonce }), body)), 'OK');
  });

  it('a signed request is not a token: the bearer path stays closed to this agent', async () => {
    const c = createAgentClient({ socketPath: d.socket!, token: 'avt_' + 'x'.repeat(43) });
    await assert.rejects(c.capabilities(), (e) => isAivaultError(e, 'AGENT_UNAUTHENTICATED')).finally(() => c.close());
  });

  function other_key() {
    return other.privateKey;
  }
});
