import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { assertNoLeak } from '../helpers/cli.ts';
import { testBroker, type TestBroker } from '../helpers/broker.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('secret flows against a loopback token issuer', () => {
  let up: Upstream;
  let t: TestBroker;
  const issued: string[] = [];
  let credential: string;
  const flow = (id: string, extra: Record<string, unknown>) =>
    t.broker.definitions.createFlow({ id, method: 'POST', allowHttp: true, allowPrivateNetwork: true, target: `http://${up.host}/oauth/token`, mode: 'acquire_secret', ...extra } as never);
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
    await t.broker.definitions.createFlow({ id: 'acq/html', mode: 'acquire_secret', method: 'GET', target: `http://${up.host}/html`, storeField: 'token', storeAlias: 'NEVER_STORED_A', allowHttp: true, allowPrivateNetwork: true });
    await assert.rejects(t.broker.runFlow('acq/html', {}), (e) => isAivaultError(e, 'ACQUIRE_NOT_JSON'));
    await t.broker.definitions.createFlow({ id: 'acq/nofield', mode: 'acquire_secret', method: 'POST', target: `http://${up.host}/nofield`, kind: 'oauth_token_response.access_token', storeAlias: 'NEVER_STORED_B', allowHttp: true, allowPrivateNetwork: true });
    await assert.rejects(t.broker.runFlow('acq/nofield', {}), (e) => isAivaultError(e, 'ACQUIRE_FIELD_MISSING'));
    assert.equal((await t.vault.listSecrets()).some((s) => s.name.startsWith('NEVER_STORED')), false);
  });

  it('send_secret: passthrough returns the scrubbed body, shape_only only types', async () => {
    await t.broker.definitions.createFlow({ id: 'send/pass', mode: 'send_secret', method: 'POST', target: `http://${up.host}/oauth/token`, visibility: 'passthrough', credential, allowHttp: true, allowPrivateNetwork: true });
    const pass = await t.broker.runFlow('send/pass', {});
    assert.equal(up.received.at(-1)!.headers['x-client-key'], 'client-key-0123456789');
    assert.match(pass.body!, /"echoed_auth":"\[REDACTED\]"/);
    assert.equal(pass.body!.includes('client-key-0123456789'), false);
    await t.broker.definitions.createFlow({ id: 'send/shape', mode: 'send_secret', method: 'POST', target: `http://${up.host}/oauth/token`, visibility: 'shape_only', credential, allowHttp: true, allowPrivateNetwork: true });
    const shape = await t.broker.runFlow('send/shape', {});
    assert.equal(shape.body, undefined);
    assert.equal((shape.responseShape as Record<string, unknown>).echoed_auth, 'string');
    assert.equal((shape.responseShape as Record<string, unknown>).token_type, 'string', 'no field is kept outside an acquire kind');
  });

  it('bidirectional_secret sends the credential and stores the answer', async () => {
    await t.broker.definitions.createFlow({ id: 'both/token', mode: 'bidirectional_secret', method: 'POST', target: `http://${up.host}/oauth/token`, storeField: 'access_token', storeAlias: 'BIDI_TOKEN', credential, allowHttp: true, allowPrivateNetwork: true });
    const before = issued.length;
    const result = await t.broker.runFlow('both/token', {});
    assert.equal(up.received.at(-1)!.headers['x-client-key'], 'client-key-0123456789');
    assert.equal(await secretValue('BIDI_TOKEN'), issued[before]);
    assert.equal((result.responseShape as Record<string, unknown>).access_token, 'string');
  });

  it('flows are granted, rate limited and revoked like capabilities; acquired secrets are audited as the agent', async () => {
    await flow('acq/agent', { storeField: 'access_token', storeAlias: 'AGENT_ACQUIRED', overwrite: true });
    const { agent } = await t.broker.agents.create('flow-bot');
    await assert.rejects(t.broker.runFlow('acq/agent', {}, { agent }), (e) => isAivaultError(e, 'CAPABILITY_NOT_GRANTED'));
    await t.broker.agents.grant({ agent: 'flow-bot', capability: 'acq/agent' }, ['POST']);
    assert.equal((await t.broker.runFlow('acq/agent', {}, { agent })).status, 'stored');
    await t.broker.agents.revokeGrant('flow-bot', 'acq/agent');
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
    const cap = await t.broker.catalog.resolveCapability('github/user');
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
      await assert.rejects(t.broker.definitions.createFlow(input as never), (e) => isAivaultError(e, code), input.id);
    }
  });
});
