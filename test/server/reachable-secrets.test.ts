// The attack on "scrubbed of the credential in use": an agent granted several capabilities on
// one upstream that keeps a log of what it received sends each credential there, then reads
// the log back through each other capability, on every surface (/v1/invoke streamed and
// whole, the gateway, its WebSockets, MCP, a passthrough flow). Each answer must be scrubbed
// of every secret the agent can make aivault send, not only the one that answer used.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { ENCODINGS, leak } from '../broker/scrub-encodings.ts';
import { assertNoLeak, canary, recorder, tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { SESSION_CHECK_MS } from '../../src/server/session-watch.ts';

interface LoggingUpstream {
  host: string;
  close(): Promise<void>;
}

/** The access token the upstream's token endpoint issues. */
const accessToken = canary('ACCESSTOKEN');

/**
 * An API that keeps the last requests it received (URL and headers) and serves them on
 * `/v1/log` (in any of the scrubber's encodings with `?as=`), and to every WebSocket client;
 * its token endpoint issues `accessToken`.
 */
async function startLoggingUpstream(): Promise<LoggingUpstream> {
  const log: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
  const remember = (req: IncomingMessage) => {
    log.push({ method: req.method!, url: req.url!, headers: req.headers });
    if (log.length > 50) log.shift();
  };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const text = JSON.stringify(log);
      remember(req);
      if (url.pathname === '/oauth/token') {
        res.setHeader('content-type', 'application/json');
        return void res.end(JSON.stringify({ access_token: accessToken, token_type: 'bearer', expires_in: 3600 }));
      }
      if (url.pathname !== '/v1/log') return void res.end('{"ok":true}');
      const as = url.searchParams.get('as');
      res.setHeader('content-type', as ? 'text/plain' : 'application/json');
      res.end(as ? ENCODINGS[as]!(text, 7) : text);
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    const send = () => {
      const text = JSON.stringify(log);
      ws.send(text.slice(0, 100));
      ws.send(text.slice(100));
      ws.send('done');
    };
    remember(req);
    send();
    ws.on('message', send);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('every secret the agent can make aivault send is scrubbed from every answer', () => {
  let v: TempVault;
  let up: LoggingUpstream;
  let daemon: RunningDaemon;
  let token: string;
  const headerKey = canary('HEADERKEY');
  const basicPassword = canary('BASICPASS');
  const queryKey = canary('QUERYKEY');
  const flowKey = canary('FLOWKEY');
  const rotatedKey = canary('ROTATED');
  const clientSecret = canary('CLIENTSECRET');
  const secrets = [headerKey, basicPassword, queryKey, flowKey, rotatedKey, clientSecret, accessToken];
  /** Capability -> the provider the gateway names it by. */
  const capabilities: Record<string, string> = { 'loga/read': 'loga', 'logb/read': 'logb', 'logc/read': 'logc', 'loge/read': 'loge' };
  const seen: string[] = [];
  const { run } = recorder(() => v);
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const agentHeaders = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  const invoke = async (capability: string, path: string, extra: object = {}) => {
    const res = await request(`${daemon.url}/v1/invoke`, { method: 'POST', headers: agentHeaders(), body: JSON.stringify({ capability, method: 'GET', path, ...extra }) });
    const text = await res.body.text();
    seen.push(text, JSON.stringify(res.headers));
    assert.equal(res.statusCode, 200, text);
    return text;
  };
  const runFlow = async () => {
    const res = await request(`${daemon.url}/v1/flows/run`, { method: 'POST', headers: agentHeaders(), body: JSON.stringify({ flow: 'logd/send' }) });
    const text = await res.body.text();
    seen.push(text);
    assert.equal(res.statusCode, 200, text);
    return text;
  };
  /** Sends every credential to the upstream, which logs it. */
  const sendAll = async () => {
    for (const capability of Object.keys(capabilities)) await invoke(capability, '/v1/ping');
    await runFlow();
  };
  const assertScrubbed = (text: string, where: string) => {
    for (const secret of secrets) {
      assertNoLeak(text, secret, where);
      assert.equal(leak(text, secret), undefined, `${where}: a decoded view holds a secret`);
    }
  };

  before(async () => {
    v = await tempVault();
    up = await startLoggingUpstream();
    const where = ['--host', up.host, '--allow-http', '--allow-private-network'];
    const a = ok(await run(['secrets', 'create', '--name', 'LOG_A_KEY', '--value', headerKey])).trim();
    ok(await run(['credential', 'create', 'loga', '--provider', 'loga', '--secret-ref', a, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', ...where]));
    const user = ok(await run(['secrets', 'create', '--name', 'LOG_B_USER', '--value', 'log-user'])).trim();
    const pass = ok(await run(['secrets', 'create', '--name', 'LOG_B_PASS', '--value', basicPassword])).trim();
    ok(await run(['credential', 'create', 'logb', '--provider', 'logb', '--secret-ref', `username=${user}`, '--secret-ref', `password=${pass}`, '--auth', 'basic', ...where]));
    const c = ok(await run(['secrets', 'create', '--name', 'LOG_C_KEY', '--value', queryKey])).trim();
    ok(await run(['credential', 'create', 'logc', '--provider', 'logc', '--secret-ref', c, '--auth', 'query', '--param-name', 'key', ...where]));
    const d = ok(await run(['secrets', 'create', '--name', 'LOG_D_KEY', '--value', flowKey])).trim();
    ok(await run(['credential', 'create', 'logd', '--provider', 'logd', '--secret-ref', d, '--auth', 'header', '--header-name', 'x-api-key', ...where]));
    const id = ok(await run(['secrets', 'create', '--name', 'LOG_E_CLIENT_ID', '--value', 'log-client-id'])).trim();
    const cs = ok(await run(['secrets', 'create', '--name', 'LOG_E_CLIENT_SECRET', '--value', clientSecret])).trim();
    ok(await run(['credential', 'create', 'loge', '--provider', 'loge', '--auth', 'o_auth2', '--grant-type', 'client_credentials', '--token-endpoint', `http://${up.host}/oauth/token`, '--secret-ref', `client_id=${id}`, '--secret-ref', `client_secret=${cs}`, ...where]));
    for (const [capability, provider] of Object.entries(capabilities)) {
      ok(await run(['capability', 'create', capability, '--provider', provider, '--credential', provider, '--method', 'GET', '--path', '/v1', '--websocket']));
    }
    ok(await run(['flow', 'create', 'logd/send', '--mode', 'send_secret', '--target', `http://${up.host}/v1/log`, '--method', 'GET', '--credential', 'logd', '--visibility', 'passthrough', '--allow-http', '--allow-private-network']));
    token = (JSON.parse(ok(await run(['agent', 'create', 'logreader', '--json']))) as { token: string }).token;
    for (const id of [...Object.keys(capabilities), 'logd/send']) ok(await run(['grant', 'logreader', id]));
    daemon = await startDaemon(v, ['--listen', '127.0.0.1:0']);
    await sendAll();
  });
  after(async () => {
    await daemon?.stop();
    await up?.close();
    for (const s of [...seen, daemon?.log() ?? '']) assertScrubbed(s, 'what the agent saw');
    v?.cleanup();
  });

  it('through /v1/invoke, streamed and whole, in every encoding the scrubber covers', async () => {
    for (const capability of Object.keys(capabilities)) {
      for (const whole of [false, true]) {
        const text = await invoke(capability, '/v1/log', whole ? { whole } : {});
        assertScrubbed(text, `${capability} (whole: ${whole})`);
        // Every other credential's request is in the log, each redacted.
        assert.ok((text.match(/\[REDACTED\]/g) ?? []).length >= 4, text);
      }
    }
    for (const as of Object.keys(ENCODINGS)) assertScrubbed(await invoke('logb/read', '/v1/log', { query: [['as', as]] }), `logb/read as ${as}`);
  });

  it('through the gateway, its WebSocket messages, MCP and a passthrough flow', async () => {
    for (const provider of Object.values(capabilities)) {
      const res = await request(`${daemon.url}/gw/${provider}/v1/log`, { headers: { authorization: `Bearer ${token}` } });
      const text = await res.body.text();
      seen.push(text, JSON.stringify(res.headers));
      assert.equal(res.statusCode, 200, text);
      assertScrubbed(text, `gateway ${provider}`);

      const ws = new WebSocket(`${daemon.url!.replace(/^http/, 'ws')}/gw/${provider}/v1/ws`, { headers: { authorization: `Bearer ${token}` } });
      const messages: string[] = [];
      await new Promise<void>((resolve, reject) => {
        setTimeout(() => reject(new Error(`only ${messages.length} messages arrived`)), 10_000).unref();
        ws.on('message', (m) => (String(m) === 'done' ? resolve() : messages.push(String(m))));
        ws.on('error', reject);
      });
      ws.close();
      seen.push(...messages);
      assertScrubbed(messages.join(''), `websocket ${provider}`);
    }

    const transport = new StreamableHTTPClientTransport(new URL(`${daemon.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'log-reader', version: '1.0.0' });
    await client.connect(transport);
    try {
      for (const capability of Object.keys(capabilities)) {
        const r = (await client.callTool({ name: 'invoke', arguments: { capability, method: 'GET', path: '/v1/log' } })) as { content: Array<{ text: string }> };
        const text = r.content.map((c) => c.text).join('');
        seen.push(text);
        assert.match(text, /^HTTP 200/);
        assertScrubbed(text, `mcp ${capability}`);
      }
    } finally {
      await client.close();
    }

    const flow = await runFlow();
    assertScrubbed(flow, 'passthrough flow');
    assert.ok((flow.match(/\[REDACTED\]/g) ?? []).length >= 4, flow);
  });

  it('an open WebSocket session is scrubbed of a secret rotated while it is open', async () => {
    const ws = new WebSocket(`${daemon.url!.replace(/^http/, 'ws')}/gw/loga/v1/ws`, { headers: { authorization: `Bearer ${token}` } });
    const messages: string[] = [];
    let logs = 0;
    const logged = (n: number) => new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => logs >= n && (clearInterval(poll), resolve()), 10);
      setTimeout(() => (clearInterval(poll), reject(new Error(`only ${logs} logs arrived`))), 10_000).unref();
    });
    ws.on('message', (m) => (String(m) === 'done' ? logs++ : messages.push(String(m))));
    await logged(1);
    const fresh = canary('FRESH');
    secrets.push(fresh);
    ok(await run(['secrets', 'rotate', 'LOG_C_KEY', '--value', fresh]));
    // The session watch sees the new generation within a check or two.
    await new Promise((r) => setTimeout(r, SESSION_CHECK_MS * 3));
    await invoke('logc/read', '/v1/ping');
    ws.send('log');
    await logged(2);
    ws.close();
    seen.push(...messages);
    assert.ok(messages.join('').includes('?key=[REDACTED]'), 'the log holds query credentials, redacted');
    assertScrubbed(messages.join(''), 'websocket after rotation');
  });

  it('a rotated secret is scrubbed from the next answer, and so is its kept previous value', async () => {
    ok(await run(['secrets', 'rotate', 'LOG_A_KEY', '--value', rotatedKey]));
    await sendAll();
    for (const capability of ['logb/read', 'logc/read']) assertScrubbed(await invoke(capability, '/v1/log'), `${capability} after rotation`);
    assertScrubbed(await runFlow(), 'flow after rotation');
  });
});
