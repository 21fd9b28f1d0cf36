import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { runAs } from '../../src/audit/actor.ts';
import { isAivaultError } from '../../src/errors.ts';
import type { AuditRecord } from '../../src/storage/types.ts';
import { assertNoLeak } from '../helpers/cli.ts';
import { testBroker, type TestBroker } from '../helpers/broker.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('secret flows against a loopback token issuer', () => {
  let up: Upstream;
  let t: TestBroker;
  const issued: string[] = [];
  let credential: string;
  const flow = (id: string, extra: Record<string, unknown>) =>
    t.definitions.createFlow({ id, method: 'POST', allowHttp: true, allowPrivateNetwork: true, target: `http://${up.host}/oauth/token`, mode: 'acquire_secret', ...extra } as never);
  const secretValue = async (name: string) => (await t.vault.revealSecret((await t.vault.describeSecret(name)).id)).toString();

  before(async () => {
    up = await startUpstream();
    t = await testBroker();
    up.handle('/oauth/token', (req, res, body) => {
      const token = () => {
        const v = `tok-${randomBytes(12).toString('hex')}`;
        issued.push(v);
        return v;
      };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ access_token: token(), refresh_token: token(), id_token: token(), token_type: 'Bearer', expires_in: 3600, scope: 'read', echoed_auth: req.headers['x-client-key'] ?? null, grant: body.toString(), extra: { nested: token() } }));
    });
    up.handle('/html', (_req, res) => void res.end('<html>nope</html>'));
    up.handle('/gzip/token', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-encoding', 'gzip');
      res.end(gzipSync(JSON.stringify({ access_token: `gz-${randomBytes(12).toString('hex')}`, token_type: 'Bearer' })));
    });
    // 2 MiB of JSON once decoded, a few KiB on the wire: over a flow's 1 MiB cap only after decoding.
    up.handle('/gzip/bomb', (_req, res) => {
      res.setHeader('content-encoding', 'gzip');
      res.end(gzipSync(JSON.stringify({ access_token: 'x'.repeat(2 * 1024 * 1024) })));
    });
    up.handle('/nofield', (_req, res) => void res.end('{"error":"invalid_grant"}'));
    await t.custom({ name: 'issuer', auth: { header: { header_name: 'x-client-key', value_template: '{{secret}}' } }, secrets: { secret: 'client-key-0123456789' }, hosts: [up.host], paths: ['/v1'] });
    credential = 'issuer';
  });
  after(async () => {
    await t.close();
    await up.close();
  });

  for (const [kind, field, alias] of [
    ['oauth_token_response.access_token', 'access_token', 'FLOW_ACCESS_TOKEN'],
    ['oauth_token_response.refresh_token', 'refresh_token', 'FLOW_REFRESH_TOKEN'],
    ['openid_token_response.id_token', 'id_token', 'FLOW_ID_TOKEN'],
  ] as const) {
    it(`${kind}: stores ${field} and returns only the redacted shape`, async () => {
      await flow(`acq/${field.replace(/_/g, '-')}`, { kind, storeAlias: alias });
      const before = issued.length;
      const result = await t.broker.runFlow(`acq/${field.replace(/_/g, '-')}`, { body: Buffer.from('grant_type=authorization_code&code=abc'), contentType: 'application/x-www-form-urlencoded' });
      const fresh = issued.slice(before);
      assert.equal(result.status, 'stored');
      assert.equal(result.alias, alias);
      assert.equal(result.responseStatus, 200);
      assert.equal(result.contentType, 'application/json');
      // Only token-response fields are named; scope is the upstream's text, so only its type.
      assert.deepEqual(result.responseShape, { access_token: 'string', refresh_token: 'string', id_token: 'string', token_type: 'Bearer', expires_in: 3600, scope: 'string', '(other fields)': 3 });
      const wanted = fresh[{ access_token: 0, refresh_token: 1, id_token: 2 }[field]]!;
      assert.equal(await secretValue(alias), wanted);
      for (const value of fresh) assertNoLeak(JSON.stringify(result), value, 'the agent-visible result');
    });
  }

  it('refuses to overwrite an existing secret unless the flow allows it', async () => {
    const kept = await secretValue('FLOW_ACCESS_TOKEN');
    await assert.rejects(t.broker.runFlow('acq/access-token', {}), (e) => isAivaultError(e, 'FLOW_OVERWRITE_REFUSED'));
    assert.equal(await secretValue('FLOW_ACCESS_TOKEN'), kept);
    await flow('acq/access-token-overwrite', { kind: 'oauth_token_response.access_token', storeAlias: 'FLOW_ACCESS_TOKEN', overwrite: true });
    await t.broker.runFlow('acq/access-token-overwrite', {});
    assert.notEqual(await secretValue('FLOW_ACCESS_TOKEN'), kept);
    assert.equal((await t.vault.describeSecret('FLOW_ACCESS_TOKEN')).currentVersion, 2);
  });

  it('stores nothing, and says why, for a non-JSON answer or a missing field', async () => {
    await t.definitions.createFlow({ id: 'acq/html', mode: 'acquire_secret', method: 'GET', target: `http://${up.host}/html`, storeField: 'token', storeAlias: 'NEVER_STORED_A', allowHttp: true, allowPrivateNetwork: true });
    await assert.rejects(t.broker.runFlow('acq/html', {}), (e) => isAivaultError(e, 'ACQUIRE_NOT_JSON'));
    await t.definitions.createFlow({ id: 'acq/nofield', mode: 'acquire_secret', method: 'POST', target: `http://${up.host}/nofield`, kind: 'oauth_token_response.access_token', storeAlias: 'NEVER_STORED_B', allowHttp: true, allowPrivateNetwork: true });
    await assert.rejects(t.broker.runFlow('acq/nofield', {}), (e) => isAivaultError(e, 'ACQUIRE_FIELD_MISSING'));
    assert.equal((await t.vault.listSecrets()).some((s) => s.name.startsWith('NEVER_STORED')), false);
  });

  it('send_secret: passthrough returns the scrubbed body, shape_only only types', async () => {
    await t.definitions.createFlow({ id: 'send/pass', mode: 'send_secret', method: 'POST', target: `http://${up.host}/oauth/token`, visibility: 'passthrough', credential, allowHttp: true, allowPrivateNetwork: true });
    const pass = await t.broker.runFlow('send/pass', {});
    assert.equal(up.received.at(-1)!.headers['x-client-key'], 'client-key-0123456789');
    assert.match(pass.body!, /"echoed_auth":"\[REDACTED\]"/);
    assert.equal(pass.body!.includes('client-key-0123456789'), false);
    await t.definitions.createFlow({ id: 'send/shape', mode: 'send_secret', method: 'POST', target: `http://${up.host}/oauth/token`, visibility: 'shape_only', credential, allowHttp: true, allowPrivateNetwork: true });
    const shape = await t.broker.runFlow('send/shape', {});
    assert.equal(shape.body, undefined);
    assert.equal((shape.responseShape as Record<string, unknown>).echoed_auth, 'string');
    assert.equal((shape.responseShape as Record<string, unknown>).token_type, 'string', 'no field is kept outside an acquire kind');
  });

  it('bidirectional_secret sends the credential and stores the answer', async () => {
    await t.definitions.createFlow({ id: 'both/token', mode: 'bidirectional_secret', method: 'POST', target: `http://${up.host}/oauth/token`, storeField: 'access_token', storeAlias: 'BIDI_TOKEN', credential, allowHttp: true, allowPrivateNetwork: true });
    const before = issued.length;
    const result = await t.broker.runFlow('both/token', {});
    assert.equal(up.received.at(-1)!.headers['x-client-key'], 'client-key-0123456789');
    assert.equal(await secretValue('BIDI_TOKEN'), issued[before]);
    assert.equal((result.responseShape as Record<string, unknown>).access_token, 'string');
  });

  it('flows are granted, rate limited and revoked like capabilities; acquired secrets are audited as the agent', async () => {
    await flow('acq/agent', { storeField: 'access_token', storeAlias: 'AGENT_ACQUIRED', overwrite: true });
    const { agent } = await t.services.agents.create('flow-bot');
    await assert.rejects(t.broker.runFlow('acq/agent', {}, { agent }), (e) => isAivaultError(e, 'CAPABILITY_NOT_GRANTED'));
    await t.services.agents.grant({ agent: 'flow-bot', capability: 'acq/agent' }, ['POST']);
    assert.equal((await t.broker.runFlow('acq/agent', {}, { agent })).status, 'stored');
    await t.services.agents.revokeGrant('flow-bot', 'acq/agent');
    await assert.rejects(t.broker.runFlow('acq/agent', {}, { agent }), (e) => isAivaultError(e, 'CAPABILITY_NOT_GRANTED'));
    await t.vault.audit.flush();
    const records = await t.vault.audit.list();
    assert.ok(records.some((r) => r.action === 'secret.create' && r.target === 'secret:AGENT_ACQUIRED@global' && r.actor === `agent:${agent.id}`));
    assert.ok(records.some((r) => r.action === 'flow.run' && r.decision === 'deny' && r.reason === 'CAPABILITY_NOT_GRANTED'));
    const dump = JSON.stringify(records);
    for (const value of issued) assert.equal(dump.includes(value), false, 'an issued token in the audit log');
  });

  it('an acquired secret with a canonical name backs a built-in credential', async () => {
    await flow('acq/github', { kind: 'oauth_token_response.access_token', storeAlias: 'GITHUB_TOKEN' });
    await t.broker.runFlow('acq/github', {});
    const described = await t.vault.describeSecret('GITHUB_TOKEN');
    assert.equal(described.pinnedProvider, 'github');
    const cap = await t.services.catalog.resolveCapability('github/user');
    assert.deepEqual(cap.credential.missing, []);
  });

  it('refuses unsafe definitions', async () => {
    for (const [input, code] of [
      [{ id: 'bad/http', mode: 'acquire_secret', method: 'POST', target: 'http://x.example.com/t', kind: 'oauth_token_response.access_token', storeAlias: 'X_TOKEN' }, 'INSECURE_SCHEME'],
      [{ id: 'bad/dots', mode: 'acquire_secret', method: 'POST', target: 'https://x.example.com/a/%2e%2e/t', kind: 'oauth_token_response.access_token', storeAlias: 'X_TOKEN' }, 'INVALID_ARGUMENT'],
      [{ id: 'bad/alias', mode: 'acquire_secret', method: 'POST', target: 'https://x.example.com/t', kind: 'oauth_token_response.access_token', storeAlias: 'lower' }, 'INVALID_ARGUMENT'],
      [{ id: 'bad/pass', mode: 'acquire_secret', method: 'POST', target: 'https://x.example.com/t', kind: 'oauth_token_response.access_token', storeAlias: 'X_TOKEN', visibility: 'passthrough' }, 'INVALID_ARGUMENT'],
      [{ id: 'bad/send', mode: 'send_secret', method: 'POST', target: 'https://x.example.com/t' }, 'INVALID_ARGUMENT'],
    ] as const) {
      await assert.rejects(t.definitions.createFlow(input as never), (e) => isAivaultError(e, code), input.id);
    }
  });

  // Drifts from invoke that flows once had, each pinned (docs/threat-model.md, response leaks).
  describe('a flow is admitted, recorded, sent and answered as an invoke is', () => {
    const records = async (): Promise<AuditRecord[]> => {
      await t.vault.audit.flush();
      return t.vault.audit.list();
    };
    const flowRecords = async (id: string) => (await records()).filter((r) => r.action === 'flow.run' && r.capability === id);

    it('waits for the owner when the grant asks for approval, and sends nothing on a denial', async () => {
      await flow('acq/approved', { kind: 'oauth_token_response.access_token', storeAlias: 'APPROVED_TOKEN', overwrite: true });
      const { agent } = await t.services.agents.create('careful-flow-bot');
      await t.services.agents.grant({ agent: 'careful-flow-bot', capability: 'acq/approved', approve: 'each' }, ['POST']);
      const sent = up.received.length;
      const run = t.broker.runFlow('acq/approved', { body: Buffer.from('code=abc'), contentType: 'application/x-www-form-urlencoded' }, { agent });
      run.catch(() => {});
      let pending = await t.services.approvals.list('pending');
      for (let i = 0; i < 50 && pending.length === 0; i++) pending = (await sleep(20), await t.services.approvals.list('pending'));
      assert.equal(pending.length, 1, 'the flow waits for the owner');
      assert.deepEqual([pending[0]!.capability, pending[0]!.method, pending[0]!.path], ['acq/approved', 'POST', '/oauth/token']);
      assert.equal(up.received.length, sent, 'nothing is sent while the owner decides');
      await t.services.approvals.decide(pending[0]!.id, 'deny');
      await assert.rejects(run, (e) => isAivaultError(e, 'APPROVAL_DENIED'));
      assert.equal(up.received.length, sent);
      const again = t.broker.runFlow('acq/approved', {}, { agent });
      for (let i = 0; i < 50 && (pending = await t.services.approvals.list('pending')).length === 0; i++) await sleep(20);
      await t.services.approvals.decide(pending[0]!.id, 'approve');
      assert.equal((await again).status, 'stored');
      const allow = (await flowRecords('acq/approved')).find((r) => r.decision === 'allow')!;
      assert.equal(allow.reason, `approved ${pending[0]!.id} by owner:local`);
    });

    it('a denial names the method, host and path of the flow refused', async () => {
      await flow('acq/ungranted', { kind: 'oauth_token_response.access_token', storeAlias: 'UNGRANTED_TOKEN' });
      const { agent } = await t.services.agents.create('ungranted-flow-bot');
      await assert.rejects(t.broker.runFlow('acq/ungranted', {}, { agent }), (e) => isAivaultError(e, 'CAPABILITY_NOT_GRANTED'));
      const deny = (await flowRecords('acq/ungranted')).find((r) => r.decision === 'deny')!;
      assert.deepEqual([deny.method, deny.host, deny.path, deny.reason], ['POST', '127.0.0.1', '/oauth/token', 'CAPABILITY_NOT_GRANTED']);
    });

    it('the allow record names the credential sent; a credential not ready is a denial, before anything is recorded as allowed', async () => {
      await t.definitions.createFlow({ id: 'send/recorded', mode: 'send_secret', method: 'POST', target: `http://${up.host}/oauth/token`, visibility: 'shape_only', credential, allowHttp: true, allowPrivateNetwork: true });
      await t.broker.runFlow('send/recorded', {});
      assert.equal((await flowRecords('send/recorded')).find((r) => r.decision === 'allow')!.target, 'credential:issuer');

      await t.custom({ name: 'fleeting', auth: { header: { header_name: 'x-client-key', value_template: '{{secret}}' } }, secrets: { secret: 'fleeting-key-0123456789' }, hosts: [up.host] });
      await t.definitions.createFlow({ id: 'send/unready', mode: 'send_secret', method: 'POST', target: `http://${up.host}/oauth/token`, credential: 'fleeting', allowHttp: true, allowPrivateNetwork: true });
      await t.vault.deleteSecret((await t.services.catalog.describeCredential('fleeting')).bindings.get('secret')!);
      const sent = up.received.length;
      await assert.rejects(t.broker.runFlow('send/unready', {}), (e) => isAivaultError(e, 'CREDENTIAL_NOT_READY'));
      assert.equal(up.received.length, sent);
      assert.deepEqual((await flowRecords('send/unready')).map((r) => [r.decision, r.reason]), [['deny', 'CREDENTIAL_NOT_READY']]);
    });

    it('a failed answer records the upstream status with the error', async () => {
      await t.definitions.createFlow({ id: 'acq/html-status', mode: 'acquire_secret', method: 'GET', target: `http://${up.host}/html`, storeField: 'token', storeAlias: 'NEVER_STORED_C', allowHttp: true, allowPrivateNetwork: true });
      await assert.rejects(t.broker.runFlow('acq/html-status', {}), (e) => isAivaultError(e, 'ACQUIRE_NOT_JSON'));
      const allow = (await flowRecords('acq/html-status')).find((r) => r.decision === 'allow')!;
      assert.equal(allow.outcome?.status, 200);
      assert.equal(allow.outcome?.error, 'ACQUIRE_NOT_JSON');
      assert.equal(allow.outcome?.bytesOut, '<html>nope</html>'.length);
    });

    it('a compressed answer is decoded, and capped once decoded', async () => {
      await flow('acq/gzip', { target: `http://${up.host}/gzip/token`, kind: 'oauth_token_response.access_token', storeAlias: 'GZIP_TOKEN' });
      assert.equal((await t.broker.runFlow('acq/gzip', {})).status, 'stored');
      assert.equal(up.received.at(-1)!.headers['accept-encoding'], 'gzip, deflate, br');
      assert.match(await secretValue('GZIP_TOKEN'), /^gz-[0-9a-f]{24}$/);
      await flow('acq/bomb', { target: `http://${up.host}/gzip/bomb`, kind: 'oauth_token_response.access_token', storeAlias: 'BOMB_TOKEN' });
      await assert.rejects(t.broker.runFlow('acq/bomb', {}), (e) => isAivaultError(e, 'RESPONSE_TOO_LARGE'));
      assert.equal((await t.vault.listSecrets()).some((s) => s.name === 'BOMB_TOKEN'), false);
    });

    it("a credential's secret goes only where the credential may send it: its hosts, its scheme, its network", async () => {
      const auth = { header: { header_name: 'x-client-key', value_template: '{{secret}}' } } as const;
      await t.custom({ name: 'elsewhere', auth, secrets: { secret: 'elsewhere-key-0123456789' }, hosts: ['api.example.com'] });
      await t.custom({ name: 'https-only', auth, secrets: { secret: 'https-only-key-0123456789' }, hosts: [up.host], allowHttp: false });
      await t.custom({ name: 'public-only', auth, secrets: { secret: 'public-only-key-0123456789' }, hosts: [up.host], allowPrivateNetwork: false });
      const sent = up.received.length;
      for (const [name, code] of [['elsewhere', 'HOST_NOT_ALLOWED'], ['https-only', 'INSECURE_SCHEME'], ['public-only', 'PRIVATE_ADDRESS_BLOCKED']] as const) {
        await t.definitions.createFlow({ id: `send/${name}`, mode: 'send_secret', method: 'POST', target: `http://${up.host}/oauth/token`, credential: name, allowHttp: true, allowPrivateNetwork: true });
        await assert.rejects(t.broker.runFlow(`send/${name}`, {}), (e) => isAivaultError(e, code), name);
      }
      assert.equal(up.received.length, sent, 'no credential left aivault');
    });

    it("an owner session's flows and invokes are recorded as that owner", async () => {
      await runAs('owner:session-1', () => t.broker.runFlow('send/recorded', {}));
      const res = await runAs('owner:session-1', () => t.broker.invoke({ capability: 'issuer/api', method: 'GET', path: '/v1/whoami' }));
      await res.body.toArray();
      await res.done;
      const all = await records();
      assert.equal(all.findLast((r) => r.action === 'flow.run')!.actor, 'owner:session-1');
      assert.equal(all.findLast((r) => r.action === 'invoke')!.actor, 'owner:session-1');
    });
  });
});
