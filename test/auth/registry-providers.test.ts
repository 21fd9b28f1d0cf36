// Built-in providers of every strategy, end to end: their real registry definitions, the
// owner's endpoint override pointing them at local stand-ins.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { readAll, testBroker, type TestBroker } from '../helpers/broker.ts';
import { isAivaultError } from '../../src/errors.ts';
import { makePki } from '../helpers/pki.ts';
import { verifySigV4 } from '../helpers/sigv4-verifier.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('built-in providers against local stand-ins', () => {
  let up: Upstream;
  let t: TestBroker;
  const store = async (values: Record<string, string>) => {
    for (const [name, value] of Object.entries(values)) await t.vault.createSecret({ name, value: Buffer.from(value) });
  };
  const redirect = (provider: string, hosts: Record<string, string>, extra: { tokenEndpoint?: string; allowHttp?: boolean } = {}) =>
    t.definitions.setEndpointOverride({ provider, hosts, allowHttp: extra.allowHttp ?? true, allowPrivateNetwork: true, ...(extra.tokenEndpoint ? { tokenEndpoint: extra.tokenEndpoint } : {}) });

  before(async () => {
    up = await startUpstream();
    t = await testBroker();
  });
  after(async () => {
    await t.close();
    await up.close();
  });

  it('openai (header): the stand-in receives the real key; agents still address api.openai.com', async () => {
    await store({ OPENAI_API_KEY: 'sk-test-openai-0123456789' });
    await redirect('openai', { 'api.openai.com': up.host });
    const res = await t.broker.invoke({ capability: 'openai/chat-completions', method: 'POST', path: '/v1/chat/completions', body: Buffer.from('{"model":"x"}') });
    assert.equal(res.status, 200);
    await readAll(res.body);
    assert.equal(up.received.at(-1)!.headers.authorization, 'Bearer sk-test-openai-0123456789');
    await assert.rejects(t.broker.invoke({ capability: 'openai/chat-completions', method: 'POST', path: '/v1/files' }), { code: 'PATH_NOT_ALLOWED' });
    const records = await t.vault.audit.list();
    assert.ok(records.some((r) => r.action === 'endpoint.set' && r.target === 'provider:openai'));
  });

  it('spotify (o_auth2 refresh_token, client_secret_basic): token from the stand-in, rotated refresh token stored', async () => {
    up.handle('/api/token', (req, res, body) => {
      const form = new URLSearchParams(body.toString());
      // RFC 6749 2.3.1: client id and secret are form-encoded inside the Basic credentials.
      const basic = Buffer.from(String(req.headers.authorization).replace(/^Basic /, ''), 'base64').toString().split(':').map(decodeURIComponent).join(':');
      const ok = basic === 'spotify-client:spotify-secret' && form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === 'refresh-token-1' && form.get('scope') === 'playlist-read-private user-read-private';
      res.setHeader('content-type', 'application/json');
      res.statusCode = ok ? 200 : 400;
      res.end(JSON.stringify(ok ? { access_token: 'spotify-at-1', token_type: 'Bearer', expires_in: 3600, refresh_token: 'refresh-token-2' } : { error: 'invalid_grant' }));
    });
    up.handle('/v1/me', (req, res) => {
      res.statusCode = req.headers.authorization === 'Bearer spotify-at-1' ? 200 : 401;
      res.end('{"id":"me"}');
    });
    await store({ SPOTIFY_CLIENT_ID: 'spotify-client', SPOTIFY_CLIENT_SECRET: 'spotify-secret', SPOTIFY_REFRESH_TOKEN: 'refresh-token-1' });
    await redirect('spotify', { 'api.spotify.com': up.host }, { tokenEndpoint: `http://${up.host}/api/token` });
    const res = await t.broker.invoke({ capability: 'spotify/me', method: 'GET', path: '/v1/me' });
    assert.equal(res.status, 200);
    assert.equal(await readAll(res.body), '{"id":"me"}');
    assert.equal((await t.vault.revealSecret((await t.vault.describeSecret('SPOTIFY_REFRESH_TOKEN')).id)).toString(), 'refresh-token-2');
    assert.equal((await t.vault.describeSecret('SPOTIFY_REFRESH_TOKEN')).pinnedProvider, 'spotify');
  });

  it('aws-bedrock (aws_sig_v4): the stand-in verifies the signature', async () => {
    up.handle('/model', (req, res, body) => {
      res.statusCode = verifySigV4(req, body, 'bedrock-secret-key-0123456789', 'bedrock').ok ? 200 : 403;
      res.end('{}');
    });
    await store({ AWS_BEDROCK_ACCESS_KEY_ID: 'AKIDBEDROCKTEST1', AWS_BEDROCK_SECRET_ACCESS_KEY: 'bedrock-secret-key-0123456789' });
    await redirect('aws-bedrock', { 'bedrock-runtime.us-east-1.amazonaws.com': up.host });
    const res = await t.broker.invoke({ capability: 'aws-bedrock/converse', method: 'POST', path: '/model/anthropic.claude-3/converse', body: Buffer.from('{"messages":[]}') });
    assert.equal(res.status, 200);
    await readAll(res.body);
  });

  it('aws-s3/write (aws_sig_v4) signs only what the capability allows: agent x-amz-* headers dropped, X-Amz-* query refused', async () => {
    up.handle('/owner-bucket', (req, res, body) => {
      const signed = /SignedHeaders=([^,]+)/.exec(String(req.headers.authorization))?.[1]?.split(';') ?? [];
      res.statusCode = verifySigV4(req, body, 's3-secret-key-0123456789abcdef', 's3').ok ? 200 : 403;
      res.end(JSON.stringify({ signed, received: Object.keys(req.headers).filter((h) => h.startsWith('x-amz-')) }));
    });
    await store({ AWS_S3_ACCESS_KEY_ID: 'AKIDS3TESTKEY0001', AWS_S3_SECRET_ACCESS_KEY: 's3-secret-key-0123456789abcdef' });
    await redirect('aws-s3', { 's3.us-east-1.amazonaws.com': up.host });
    const before = up.received.length;
    const res = await t.broker.invoke({
      capability: 'aws-s3/write',
      method: 'PUT',
      host: 's3.us-east-1.amazonaws.com',
      path: '/owner-bucket/report.txt',
      headers: [['x-amz-copy-source', '/other-bucket/secret.txt'], ['X-Amz-Acl', 'public-read'], ['x-amz-grant-read', 'uri=http://acs.amazonaws.com/groups/global/AllUsers'], ['X-Amz-Target', 'DynamoDB_20120810.DeleteTable'], ['x-amz-meta-owner', 'agent-7'], ['content-type', 'text/plain']],
      body: Buffer.from('hello'),
    });
    const out = JSON.parse(await readAll(res.body)) as { signed: string[]; received: string[] };
    assert.equal(res.status, 200, 'the signature verifies');
    for (const h of ['x-amz-copy-source', 'x-amz-acl', 'x-amz-grant-read', 'x-amz-target']) {
      assert.equal(out.signed.includes(h) || out.received.includes(h), false, `${h} is neither signed nor sent`);
    }
    assert.ok(out.signed.includes('x-amz-meta-owner'), 'user metadata, which the capability allows, is signed and sent');
    for (const [k, v] of [['X-Amz-Expires', '604800'], ['x-amz-signature', 'abc'], ['X-Amz-SignedHeaders', 'host']]) {
      await assert.rejects(t.broker.invoke({ capability: 'aws-s3/write', method: 'PUT', host: 's3.us-east-1.amazonaws.com', path: '/owner-bucket/x', query: [[k!, v!]] }), (e) => isAivaultError(e, 'MALFORMED_URL'), k);
    }
    assert.equal(up.received.length, before + 1, 'the refused requests sent nothing');
  });

  it('bitmex (hmac): the stand-in verifies the signature over verb, path, expiry and body', async () => {
    up.handle('/api/v1/order', (req, res, body) => {
      const expected = createHmac('sha256', 'bitmex-secret').update(`${req.method}${req.url}${req.headers['api-expires']}${body}`).digest('hex');
      res.statusCode = req.headers['api-signature'] === expected && req.headers['api-key'] === 'bitmex-key' ? 200 : 401;
      res.end('[]');
    });
    await store({ BITMEX_API_KEY: 'bitmex-key', BITMEX_API_SECRET: 'bitmex-secret' });
    await redirect('bitmex', { 'www.bitmex.com': up.host });
    const res = await t.broker.invoke({ capability: 'bitmex/orders', method: 'POST', path: '/api/v1/order', query: [['symbol', 'XBTUSD']], body: Buffer.from('{"orderQty":1}') });
    assert.equal(res.status, 200);
    await readAll(res.body);
  });

  describe('swish (mtls)', () => {
    let server: Server;
    const pki = makePki();
    before(async () => {
      server = createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
        res.end(JSON.stringify({ cn: (req.socket as TLSSocket).getPeerCertificate().subject?.CN, url: req.url }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it('presents the pinned client certificate to the stand-in', async () => {
      await store({ SWISH_CERT_PEM: pki.clientCert, SWISH_KEY_PEM: pki.clientKey, SWISH_CA_PEM: pki.ca });
      await redirect('swish', { 'cpc.getswish.net': `127.0.0.1:${(server.address() as AddressInfo).port}` }, { allowHttp: false });
      const res = await t.broker.invoke({ capability: 'swish/payment-requests', method: 'GET', path: '/swish-cpcapi/api/v1/paymentrequests/abc' });
      assert.deepEqual(JSON.parse(await readAll(res.body)), { cn: 'agent-client', url: '/swish-cpcapi/api/v1/paymentrequests/abc' });
    });
  });
});
