// An answer still streaming when its agent can reach a new secret: an upstream that keeps
// state (an inspector that pushes every request it receives down an open event stream) would
// hand a value planted by a later request down an answer opened before it. Each open answer,
// over /v1/invoke, the gateway or a WebSocket, is widened before anything more goes upstream.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { createAgentClient, type AgentClient } from '../../src/sdk/agent-client.ts';
import { createOwnerClient, type OwnerClient } from '../../src/sdk/owner-client.ts';
import { leak } from '../broker/scrub-encodings.ts';
import { canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

/**
 * GET /v1/events: an event stream of every other request's headers; WebSocket clients get
 * them too (an upgrade with ?delay=MS is answered that much later). /v1/log answers all so
 * far (after ?wait=MS); /oauth/token issues a new access token each time; /v1/unauth is 401.
 */
async function startInspector(): Promise<{ host: string; tokens: string[]; close(): Promise<void> }> {
  const streams = new Set<ServerResponse>();
  const sockets = new Set<WebSocket>();
  const log: string[] = [];
  const tokens: string[] = [];
  const server: Server = createServer(async (req, res) => {
    if (req.url!.startsWith('/v1/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    const body: Buffer[] = [];
    req.on('data', (d: Buffer) => body.push(d));
    await new Promise((resolve) => req.on('end', resolve));
    const event = JSON.stringify({ url: req.url, headers: req.headers, body: Buffer.concat(body).toString('utf8') });
    log.push(event);
    for (const s of streams) s.write(`data: ${event}\n\n`);
    for (const ws of sockets) ws.send(event);
    const url = new URL(req.url!, 'http://x');
    if (url.pathname.startsWith('/oauth/token')) {
      tokens.push(canary('ACCESS'));
      res.setHeader('content-type', 'application/json');
      // /oauth/token/slow: a slow token endpoint (what it received is pushed out meanwhile).
      if (url.pathname.endsWith('/slow')) await new Promise((resolve) => setTimeout(resolve, 300));
      return void res.end(JSON.stringify({ access_token: tokens.at(-1), token_type: 'bearer', expires_in: 3600 }));
    }
    if (url.pathname === '/v1/unauth') return void res.writeHead(401).end('{"error":"no"}');
    if (url.pathname === '/v1/log') return void setTimeout(() => res.end(`[${log.join(',')}]`), Number(url.searchParams.get('wait') ?? 0));
    if (url.pathname === '/v1/log/declared') {
      // The head (a declared size) and the first byte now, the log after ?wait=MS, padded to size.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': DECLARED });
      res.write('[');
      return void setTimeout(() => res.end(`${log.join(',')}]`.padEnd(DECLARED - 1)), Number(url.searchParams.get('wait') ?? 0));
    }
    res.end('{"ok":true}');
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    setTimeout(() => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws)), Number(new URL(req.url!, 'http://x').searchParams.get('delay') ?? 0));
  });
  wss.on('connection', (ws) => {
    ws.send(`[${log.join(',')}]`);
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    tokens,
    close: async () => {
      for (const ws of sockets) ws.terminate();
      for (const s of streams) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What /v1/log/declared says it holds: small enough that aivault reads it whole before it shows any. */
const DECLARED = 32 * 1024;

/** A stream read as it comes: `until(text)` waits for `text` and answers everything read so far. */
function reading(body: Readable): (until: string) => Promise<string> {
  let text = '';
  let ended = false;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  body.on('data', (chunk: Buffer) => ((text += String(chunk)), wake()));
  body.on('end', () => ((ended = true), wake()));
  body.on('error', () => ((ended = true), wake()));
  return async (until) => {
    while (!text.includes(until)) {
      if (ended) throw new Error(`the stream ended before ${until}: ${text}`);
      await new Promise<void>((resolve) => waiters.add(function w() { waiters.delete(w); resolve(); }));
    }
    return text;
  };
}

describe('answers still streaming when the agent can reach more', () => {
  const FIRST = canary('FIRST');
  const ROTATED = canary('ROTATED');
  const GRANTED = canary('GRANTED');
  /** With dashes, which oauth4webapi form-encodes before it base64-encodes the Basic credentials. */
  const CLIENT_SECRET = canary('CLIENT-SECRET');
  const ACME_KEY = canary('sk-acme');
  const RT_CLIENT_SECRET = canary('rt-client-secret');
  const RT_REFRESH = canary('rt-refresh');
  let v: TempVault;
  let daemon: RunningDaemon;
  let owner: OwnerClient;
  let agent: AgentClient;
  let inspector: Awaited<ReturnType<typeof startInspector>>;
  let token: string;
  let firstRef: string;

  before(async () => {
    [v, inspector] = await Promise.all([tempVault(), startInspector()]);
    daemon = await startDaemon(v, ['--socket', join(v.dir, 'open.sock'), '--listen', '127.0.0.1:0']);
    const ownerId = (JSON.parse((await v.cli(['owner', 'list', '--json'])).stdout) as Array<{ id: string }>)[0]!.id;
    owner = createOwnerClient({ socketPath: daemon.socket!, ownerId, privateKey: readFileSync(join(v.dir, 'owner.key'), 'utf8') });
    const network = { allowHttp: true, allowPrivateNetwork: true, hosts: [inspector.host] };
    firstRef = ((await owner.call('secrets.create', { name: 'INSPECT_FIRST', value: FIRST })) as { ref: string }).ref;
    const grantedRef = ((await owner.call('secrets.create', { name: 'INSPECT_OTHER', value: GRANTED })) as { ref: string }).ref;
    await owner.call('credential.create', { name: 'inspect', provider: 'inspect', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: firstRef }, ...network });
    await owner.call('credential.create', { name: 'other', provider: 'other', auth: { header: { header_name: 'x-other', value_template: '{{secret}}' } }, secretRefs: { secret: grantedRef }, ...network });
    await owner.call('capability.create', { id: 'inspect/api', provider: 'inspect', credential: 'inspect', methods: ['GET'], pathPrefixes: ['/v1'], websocket: true });
    await owner.call('capability.create', { id: 'other/api', provider: 'other', credential: 'other', methods: ['GET'], pathPrefixes: ['/v1'] });
    const clientId = ((await owner.call('secrets.create', { name: 'TOK_CLIENT_ID', value: 'tok-client-id' })) as { ref: string }).ref;
    const clientSecret = ((await owner.call('secrets.create', { name: 'TOK_CLIENT_SECRET', value: CLIENT_SECRET })) as { ref: string }).ref;
    await owner.call('credential.create', { name: 'tok', provider: 'tok', auth: { o_auth2: { grant_type: 'client_credentials', token_endpoint: `http://${inspector.host}/oauth/token` } }, secretRefs: { client_id: clientId, client_secret: clientSecret }, ...network });
    await owner.call('capability.create', { id: 'tok/api', provider: 'tok', credential: 'tok', methods: ['GET'], pathPrefixes: ['/v1'] });
    const rtId = ((await owner.call('secrets.create', { name: 'RT_CLIENT_ID', value: 'rt-client-id' })) as { ref: string }).ref;
    const rtSecret = ((await owner.call('secrets.create', { name: 'RT_CLIENT_SECRET', value: RT_CLIENT_SECRET })) as { ref: string }).ref;
    const rtRefresh = ((await owner.call('secrets.create', { name: 'RT_REFRESH', value: RT_REFRESH })) as { ref: string }).ref;
    await owner.call('credential.create', { name: 'rt', provider: 'rt', auth: { o_auth2: { grant_type: 'refresh_token', token_endpoint: `http://${inspector.host}/oauth/token/slow` } }, secretRefs: { client_id: rtId, client_secret: rtSecret, refresh_token: rtRefresh }, ...network });
    await owner.call('capability.create', { id: 'rt/api', provider: 'rt', credential: 'rt', methods: ['GET'], pathPrefixes: ['/v1'] });
    await owner.call('flow.create', { id: 'inspect/slow-log', mode: 'send_secret', target: `http://${inspector.host}/v1/log?wait=1000`, method: 'GET', credential: 'inspect', visibility: 'passthrough', allowHttp: true, allowPrivateNetwork: true });
    token = ((await owner.call('agent.create', { name: 'watcher' })) as { token: string }).token;
    await owner.call('grant.create', { agent: 'watcher', capabilities: ['inspect/api', 'tok/api', 'inspect/slow-log'] });
    agent = createAgentClient({ socketPath: daemon.socket!, token });
  });
  after(async () => {
    await agent?.close();
    await owner?.close();
    await daemon?.stop();
    await inspector?.close();
    v?.cleanup();
  });

  /** Grants other/api, plants its secret upstream with a request to `path`, and checks what `seen()` shows then. */
  async function plantGranted(path: string, seen: () => Promise<string>): Promise<void> {
    await owner.call('grant.create', { agent: 'watcher', capabilities: ['other/api'] });
    try {
      await (await agent.invoke({ capability: 'other/api', path })).text();
      // From this plant's entry on: the log holds an earlier test's too, planted while that
      // grant held and sent to this answer before the grant was made again, which it need not
      // cover (a revoked grant's plant comes back; docs/threat-model.md). Under load it leaves
      // before the widening.
      const text = (await seen()).split(path).slice(1).join(path);
      assert.match(text, /"x-other":"\[REDACTED\]"/);
      assert.equal(leak(text, GRANTED), undefined);
    } finally {
      await owner.call('grant.revoke', { agent: 'watcher', capabilities: ['other/api'] });
    }
  }

  /** Messages a WebSocket got, once one names `path`. */
  async function messagesUntil(messages: string[], path: string): Promise<string> {
    while (!messages.some((m) => m.includes(path))) await new Promise((r) => setTimeout(r, 10));
    return messages.join('\n');
  }

  it('an /v1/invoke stream opened before a rotation does not show the rotated value', async () => {
    const events = await agent.invoke({ capability: 'inspect/api', path: '/v1/events' });
    const read = reading(events.body);
    await read(': open');
    await owner.call('secrets.rotate', { secret: firstRef, value: ROTATED });
    await (await agent.invoke({ capability: 'inspect/api', path: '/v1/after-rotation' })).text();
    const seen = await read('/v1/after-rotation');
    events.body.destroy();
    assert.match(seen, /"x-key":"\[REDACTED\]"/);
    assert.equal(leak(seen, ROTATED), undefined);
  });

  it('a gateway stream opened before a new grant does not show the newly granted secret', async () => {
    const res = await request(`${daemon.url}/gw/inspect/v1/events`, { headers: { authorization: `Bearer ${token}` } });
    const read = reading(res.body);
    await read(': open');
    try {
      await plantGranted('/v1/after-grant', () => read('/v1/after-grant'));
    } finally {
      res.body.destroy();
    }
  });

  it('a WebSocket session opened before a new grant does not show the newly granted secret, even at once', async () => {
    const ws = new WebSocket(`${daemon.url!.replace(/^http/, 'ws')}/gw/inspect/v1/socket`, { headers: { authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const messages: string[] = [];
    ws.on('message', (m) => messages.push(String(m)));
    try {
      // Planted at once: well before the session watch's next look (a second).
      await plantGranted('/v1/after-ws-grant', () => messagesUntil(messages, '/v1/after-ws-grant'));
    } finally {
      ws.close();
    }
  });

  it('an OAuth token refused with a 401 and replaced, and the client secret in the token request, stay scrubbed', async () => {
    await (await agent.invoke({ capability: 'tok/api', path: '/v1/ok' })).text();
    const refused = await agent.invoke({ capability: 'tok/api', path: '/v1/unauth' });
    await refused.text();
    assert.equal(refused.status, 401);
    assert.ok(inspector.tokens.length >= 2, 'the 401 made aivault ask for a new token');
    const log = await (await agent.invoke({ capability: 'inspect/api', path: '/v1/log' })).text();
    for (const t of inspector.tokens) assert.equal(leak(log, t), undefined, 'an access token aivault sent');
    assert.equal(/Basic [A-Za-z0-9+/=]{8,}/.test(log), false, 'the Basic credentials of the token request');
    assert.equal(leak(log, CLIENT_SECRET), undefined);
  });

  it('a WebSocket session whose upgrade is still pending is widened too', async () => {
    const ws = new WebSocket(`${daemon.url!.replace(/^http/, 'ws')}/gw/inspect/v1/socket?delay=1000`, { headers: { authorization: `Bearer ${token}` } });
    const messages: string[] = [];
    ws.on('message', (m) => messages.push(String(m)));
    const opened = new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    await new Promise((r) => setTimeout(r, 200));
    try {
      // While the upstream has not answered the upgrade: on connecting it sends its whole log.
      await plantGranted('/v1/while-upgrading', async () => {
        await opened;
        return messagesUntil(messages, '/v1/while-upgrading');
      });
    } finally {
      ws.close();
    }
  });

  it('a small answer whose head came before a new grant is widened while its body comes', async () => {
    const answer = agent.invoke({ capability: 'inspect/api', path: '/v1/log/declared', query: { wait: '800' } });
    await new Promise((r) => setTimeout(r, 200));
    await plantGranted('/v1/while-declared', async () => (await answer).text());
  });

  it("a flow's answer is widened while it waits", async () => {
    const flow = agent.runFlow('inspect/slow-log');
    await new Promise((r) => setTimeout(r, 200));
    await plantGranted('/v1/while-flowing', async () => String((await flow).body));
  });
  it('an answer opened before its agent was rebound to another context does not show that context\'s secret', async () => {
    // OpenAI's key: one for the whole vault, another in workspace acme; the API is the inspector.
    await owner.call('endpoint.set', { provider: 'openai', hosts: { 'api.openai.com': inspector.host }, allowHttp: true, allowPrivateNetwork: true });
    await owner.call('secrets.create', { name: 'OPENAI_API_KEY', value: canary('sk-global') });
    await owner.call('secrets.create', { name: 'OPENAI_API_KEY', value: ACME_KEY, scope: 'workspace:acme' });
    await owner.call('grant.create', { agent: 'watcher', capabilities: ['openai/models'] });
    const events = await agent.invoke({ capability: 'inspect/api', path: '/v1/events' });
    const read = reading(events.body);
    await read(': open');
    await owner.call('agent.context', { agent: 'watcher', context: 'workspace:acme' });
    try {
      await (await agent.invoke({ capability: 'openai/models', path: '/v1/models' })).text();
      const seen = await read('/v1/models');
      assert.match(seen, /"authorization":"\[REDACTED\]"/);
      assert.equal(leak(seen, ACME_KEY), undefined);
    } finally {
      events.body.destroy();
      await owner.call('agent.context', { agent: 'watcher', context: null });
    }
  });
  it("a token request made for a newly granted OAuth credential is scrubbed from answers opened before", async () => {
    const events = await agent.invoke({ capability: 'inspect/api', path: '/v1/events' });
    const read = reading(events.body);
    await read(': open');
    await owner.call('grant.create', { agent: 'watcher', capabilities: ['rt/api'] });
    try {
      // The token request goes to the token endpoint (here the inspector) before the request itself.
      await (await agent.invoke({ capability: 'rt/api', path: '/v1/after-token' })).text();
      const seen = await read('/v1/after-token');
      assert.match(seen, /\/oauth\/token/);
      assert.equal(leak(seen, RT_CLIENT_SECRET), undefined, 'the client secret');
      assert.equal(leak(seen, RT_REFRESH), undefined, 'the refresh token');
      assert.equal(/Basic [A-Za-z0-9+/=]{8,}/.test(seen), false, 'the Basic client credentials');
    } finally {
      events.body.destroy();
      await owner.call('grant.revoke', { agent: 'watcher', capabilities: ['rt/api'] });
    }
  });
});
