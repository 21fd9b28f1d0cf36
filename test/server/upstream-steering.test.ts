// Issue 15, "the allow-lists can be side-stepped at the upstream", end to end: a daemon
// process, an agent holding only its token, and a loopback upstream that records what
// reached it. What the allow-lists checked must be what the upstream's web stack acts on.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { request, type Agent } from 'undici';
import { startAgentSide, type AgentSide } from '../helpers/agent-side.ts';
import { canary, type TempVault } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('the upstream acts on what the allow-lists checked', () => {
  let up: Upstream;
  let side: AgentSide;
  let v: TempVault;
  let token: string;
  let dispatcher: Agent;
  let ref: string;
  const key = canary('STEER');

  before(async () => {
    up = await startUpstream();
    side = await startAgentSide(async (owner) => {
      ref = (await owner(['secrets', 'create', '--name', 'STEER_KEY', '--value', key])).trim();
      await owner(['credential', 'create', 'steer', '--provider', 'steer', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-api-key', '--host', up.host, '--allow-http', '--allow-private-network']);
      await owner(['capability', 'create', 'steer/read', '--provider', 'steer', '--credential', 'steer', '--method', 'GET', '--method', 'POST', '--path', '/v1/public']);
      await owner(['flow', 'create', 'steer/send', '--mode', 'send_secret', '--target', `http://${up.host}/v1/public/send`, '--method', 'POST', '--credential', 'steer', '--allow-http', '--allow-private-network']);
      return ['steer/read', 'steer/send'];
    });
    ({ v, token, dispatcher } = side);
  });
  after(async () => {
    await side.close();
    await up.close();
  });

  const invoke = (body: Record<string, unknown>) => side.invoke('steer/read', body);

  it('headers that name another method, path, host or client never reach the upstream', async () => {
    const steering: Array<[string, string]> = [
      ['X-HTTP-Method-Override', 'DELETE'], ['X-HTTP-Method', 'DELETE'], ['X-Method-Override', 'DELETE'],
      ['X-Original-URL', '/admin'], ['X-Rewrite-URL', '/admin'], ['X-Original-URI', '/admin'], ['X-Override-URL', '/admin'],
      ['X-Forwarded-For', '127.0.0.1'], ['X-Forwarded-Host', 'admin.internal'], ['X-Forwarded-Prefix', '/admin'], ['X-Forwarded-Proto', 'https'],
      ['Forwarded', 'for=127.0.0.1;host=admin.internal'], ['X-Real-IP', '127.0.0.1'], ['True-Client-IP', '127.0.0.1'], ['X-Client-IP', '127.0.0.1'],
      ['X-Envoy-Original-Path', '/admin'], ['X-Middleware-Subrequest', 'middleware'], ['X-Host', 'admin.internal'], ['Via', '1.1 trusted'],
    ];
    const before = up.received.length;
    const r = await invoke({ path: '/v1/public/x', headers: [...steering, ['X-Ordinary', 'kept']] });
    assert.equal(r.status, 200, r.text);
    assert.equal(up.received.length, before + 1);
    const got = up.received.at(-1)!.headers;
    for (const [name] of steering) assert.equal(got[name.toLowerCase()], undefined, `${name} reached the upstream`);
    assert.equal(got['x-ordinary'], 'kept');
    assert.equal(got['x-api-key'], key);
  });

  it('so do their CGI twins (`_` for `-`), httpoxy\'s Proxy, and a second spelling of the credential header', async () => {
    const twins: Array<[string, string]> = [
      ['X_Forwarded_For', '127.0.0.1'], ['X_Forwarded_Host', 'evil.example'], ['X_HTTP_METHOD_OVERRIDE', 'DELETE'], ['X_Original_URL', '/admin'],
      ['X-Original_URL', '/admin'], ['X_Real_IP', '127.0.0.1'], ['Proxy_Authorization', 'Basic x'], ['Proxy', 'http://127.0.0.1:9'], ['X_API_KEY', 'agent-chosen'],
      ['X.HTTP.Method.Override', 'DELETE'], ['X~Forwarded~For', '127.0.0.1'], ['X+Original+URL', '/admin'], ["X'Real'IP", '127.0.0.1'],
    ];
    const r = await invoke({ path: '/v1/public/x', headers: twins });
    assert.equal(r.status, 200, r.text);
    const got = up.received.at(-1)!.headers;
    for (const [name] of twins) assert.equal(got[name.toLowerCase()], undefined, `${name} reached the upstream`);
    assert.equal(got['x-api-key'], key);
    const form = await invoke({ method: 'POST', path: '/v1/public/x', headers: [['content-type', 'application/x-www-form-urlencoded']], body: 'a=1&.method=DELETE' });
    assert.deepEqual([form.status, form.code], [403, 'METHOD_NOT_ALLOWED'], 'PHP reads ".method" as "_method"');
  });

  it('a method override in the query or a form body is refused before anything is sent', async () => {
    const before = up.received.length;
    for (const name of ['_method', '_METHOD', 'X-HTTP-Method-Override']) {
      const r = await invoke({ path: '/v1/public/x', query: [[name, 'DELETE']] });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.code, 'MALFORMED_URL');
    }
    const form = await invoke({ method: 'POST', path: '/v1/public/x', headers: [['content-type', 'application/x-www-form-urlencoded']], body: 'a=1&_method=DELETE' });
    assert.equal(form.status, 403, form.text);
    assert.equal(form.code, 'METHOD_NOT_ALLOWED');
    assert.equal(up.received.length, before, 'nothing reached the upstream');
    // Laravel reads a JSON body's top-level keys as parameters; a nested one is the API's own business.
    const json = await invoke({ method: 'POST', path: '/v1/public/x', headers: [['content-type', 'application/json']], body: '{"_method":"DELETE"}' });
    assert.equal(json.status, 403, json.text);
    assert.equal(json.code, 'METHOD_NOT_ALLOWED');
    assert.equal(up.received.length, before, 'nothing reached the upstream');
    const nested = await invoke({ method: 'POST', path: '/v1/public/x', headers: [['content-type', 'application/json']], body: '{"input":{"_method":"DELETE"}}' });
    assert.equal(nested.status, 200, nested.text);
    // A body given as a JSON value is serialised and then checked like any other.
    const value = await invoke({ method: 'POST', path: '/v1/public/x', json: { _method: 'DELETE' } });
    assert.deepEqual([value.status, value.code], [403, 'METHOD_NOT_ALLOWED'], value.text);
    assert.equal(up.received.length, before + 1, 'only the nested one reached the upstream');
    const nestedValue = await invoke({ method: 'POST', path: '/v1/public/x', json: { input: { _method: 'DELETE' } } });
    assert.equal(nestedValue.status, 200, nestedValue.text);
    assert.equal(up.received.at(-1)!.body.toString('utf8'), '{"input":{"_method":"DELETE"}}');
    assert.equal(up.received.at(-1)!.headers['content-type'], 'application/json');
    const two = await invoke({ method: 'POST', path: '/v1/public/x', body: '{}', json: {} });
    assert.deepEqual([two.status, two.code], [400, 'INVALID_ARGUMENT'], two.text);
  });

  it('an override the check used to miss is refused too: no content type, text after the form type, a leading space in the name, a compressed form (the re-attack)', async () => {
    const before = up.received.length;
    const form = 'application/x-www-form-urlencoded';
    const bodies: Array<{ headers: Array<[string, string]>; body: string }> = [
      { headers: [], body: '_method=DELETE' },
      { headers: [['content-type', `${form}, text/plain`]], body: '_method=DELETE' },
      { headers: [['content-type', `${form} x`]], body: '_method=DELETE' },
      { headers: [['content-type', form], ['content-type', 'text/plain']], body: '_method=DELETE' },
      { headers: [['Content-Type', 'application/json'], ['Content_Type', form]], body: '_method=DELETE' },
      { headers: [['content-type', form]], body: '+_method=DELETE' },
      { headers: [['content-type', 'multipart/form-data; boundary=b']], body: '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--\r\n' },
    ];
    for (const b of bodies) {
      const r = await invoke({ method: 'POST', path: '/v1/public/x', ...b });
      assert.deepEqual([r.status, r.code], [403, 'METHOD_NOT_ALLOWED'], `${JSON.stringify(b)}: ${r.text}`);
    }
    const gw = await request('http://aivault/gw/steer/v1/public/x', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '_method=DELETE', dispatcher });
    await gw.body.dump();
    assert.deepEqual([gw.statusCode, gw.headers['x-aivault-error']], [403, 'METHOD_NOT_ALLOWED'], 'the gateway, no content type');
    const gzipped = await invoke({ method: 'POST', path: '/v1/public/x', headers: [['content-type', form], ['content-encoding', 'gzip']], bodyBase64: gzipSync('_method=DELETE').toString('base64') });
    assert.deepEqual([gzipped.status, gzipped.code], [403, 'METHOD_NOT_ALLOWED'], `a gzipped form (body-parser inflates it): ${gzipped.text}`);
    const query = await invoke({ path: '/v1/public/x', query: [[' _method', 'DELETE']] });
    assert.deepEqual([query.status, query.code], [403, 'MALFORMED_URL'], query.text);
    const flow = await request('http://aivault/v1/flows/run', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ flow: 'steer/send', body: '_method=DELETE' }), dispatcher });
    const flowText = await flow.body.text();
    assert.deepEqual([flow.statusCode, flow.headers['x-aivault-error']], [403, 'METHOD_NOT_ALLOWED'], flowText);
    assert.equal(up.received.length, before, 'nothing reached the upstream');
    const sent = await request('http://aivault/v1/flows/run', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ flow: 'steer/send', body: '{"a":1}', contentType: 'application/json' }), dispatcher });
    assert.equal(sent.statusCode, 200, await sent.body.text());
  });

  it('a ";" path parameter, an overlong or Unicode-normalised dot or slash cannot hide a dot segment, on /v1/invoke or the gateway', async () => {
    const before = up.received.length;
    for (const path of ['/v1/public/..;/admin', '/v1/public/..;x=1/admin', '/v1/public/.;/x', '/v1/public/..%3B/admin', '/v1/public/;/x', '/v1/public/%C0%AE%C0%AE/admin', '/v1/public/..%EF%BC%8Fadmin', '/v1/public/%E2%80%A5/admin']) {
      const r = await invoke({ path });
      assert.equal(r.status, 403, `${path}: ${r.text}`);
      assert.equal(r.code, 'MALFORMED_PATH', path);
      const gw = await request(`http://aivault/gw/steer${path}`, { headers: { authorization: `Bearer ${token}` }, dispatcher });
      await gw.body.dump();
      assert.equal(gw.statusCode, 403, `gateway ${path}`);
    }
    assert.equal(up.received.length, before);
    assert.equal((await invoke({ path: '/v1/public/item;v=2' })).status, 200, 'a parameter on an ordinary segment is fine');
  });

  it('a header value past Latin-1 is refused before admission: a deny record, no allow', async () => {
    const before = up.received.length;
    const r = await invoke({ path: '/v1/public/x', headers: [['X-Name', 'caf\u00e9 \u2603']] });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.code, 'MALFORMED_HEADER');
    assert.equal(up.received.length, before);
    const records = JSON.parse((await v.cli(['audit', 'list', '--capability', 'steer/read', '--json'])).stdout) as Array<{ action: string; decision: string; reason: string | null }>;
    const last = records.filter((x) => x.action === 'invoke').at(-1)!;
    assert.deepEqual([last.decision, last.reason], ['deny', 'MALFORMED_HEADER']);
  });

  it('an IPv6-literal host works end to end; a spelling of it that is not canonical matches too', async () => {
    const server = createServer((req, res) => res.end(`v6 ${req.headers['x-api-key'] === key ? 'keyed' : 'unkeyed'}`));
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const made = await v.cli(['credential', 'create', 'six', '--provider', 'six', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-api-key', '--host', `[0:0:0:0:0:0:0:1]:${port}`, '--allow-http', '--allow-private-network']);
      assert.equal(made.code, 0, made.stderr);
      assert.equal((await v.cli(['capability', 'create', 'six/api', '--provider', 'six', '--credential', 'six', '--method', 'GET', '--path', '/v1'])).code, 0);
      const r = await v.cli(['invoke', 'six/api', '--path', '/v1/x']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'v6 keyed');
      const bare = await v.cli(['credential', 'create', 'six2', '--provider', 'six2', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-api-key', '--host', '::1']);
      assert.equal(bare.code, 2, 'an unbracketed IPv6 literal is refused at creation');
      assert.match(bare.stderr, /INVALID_ARGUMENT/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
