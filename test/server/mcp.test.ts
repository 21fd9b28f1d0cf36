// `aivault mcp` in its own process, driven by the MCP SDK's own client over stdio, and
// the daemon's Streamable HTTP endpoint (/mcp) driven by the SDK's HTTP client.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { request } from 'undici';
import { CLI, assertNoLeak, canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type ToolResult = { isError?: boolean; content: Array<{ type: string; text: string }>; structuredContent?: { code?: string; type?: string; status?: number } };

describe('aivault mcp', () => {
  let v: TempVault;
  let up: Upstream;
  let token: string;
  const key = canary('MCP');

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    const ok = async (args: string[]) => {
      const r = await v.cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const ref = (await ok(['secrets', 'create', '--name', 'MCP_KEY', '--value', key])).trim();
    await ok(['credential', 'create', 'notes', '--provider', 'notes', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network']);
    await ok(['capability', 'create', 'notes/read', '--provider', 'notes', '--credential', 'notes', '--method', 'GET', '--method', 'POST', '--path', '/v1/notes']);
    await ok(['capability', 'create', 'notes/admin', '--provider', 'notes', '--credential', 'notes', '--method', 'GET', '--path', '/admin']);
    token = (JSON.parse(await ok(['agent', 'create', 'mcp-bot', '--json'])) as { token: string }).token;
    await ok(['grant', 'mcp-bot', 'notes/read']);
  });
  after(async () => {
    await up.close();
    v.cleanup();
  });

  async function connect(args: string[], env: Record<string, string>): Promise<Client> {
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', ...args], env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...env }, stderr: 'pipe' });
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    await client.connect(transport);
    return client;
  }

  async function exercise(client: Client): Promise<void> {
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(tools, ['invoke', 'list_capabilities', 'notes__read']);
    const list = (await client.callTool({ name: 'list_capabilities', arguments: {} })) as ToolResult;
    assert.deepEqual((JSON.parse(list.content[0]!.text) as Array<{ id: string }>).map((c) => c.id), ['notes/read']);
    const read = (await client.callTool({ name: 'notes__read', arguments: { path: '/v1/notes/1', query: { q: 'x' } } })) as ToolResult;
    assert.equal(read.isError, false);
    assert.match(read.content[0]!.text, /^HTTP 200/);
    assert.match(read.content[0]!.text, /"authorization":"\[REDACTED\]"/);
    assert.equal(up.received.at(-1)!.headers.authorization, `Bearer ${key}`);
    assert.equal(up.received.at(-1)!.url, '/v1/notes/1?q=x');
    const denied = (await client.callTool({ name: 'invoke', arguments: { capability: 'notes/admin', path: '/admin' } })) as ToolResult;
    assert.equal(denied.isError, true);
    assert.match(denied.content[0]!.text, /^CAPABILITY_NOT_GRANTED: /);
    assert.deepEqual(
      [denied.structuredContent?.code, denied.structuredContent?.type, denied.structuredContent?.status],
      ['CAPABILITY_NOT_GRANTED', 'https://aivault.dev/errors/capability-not-granted', 403],
      'the tool error carries its code as a problem document',
    );
    const traversal = (await client.callTool({ name: 'invoke', arguments: { capability: 'notes/read', path: '/v1/notes/../../admin' } })) as ToolResult;
    assert.match(traversal.content[0]!.text, /^MALFORMED_PATH: /);
    // An LLM holds an object, not JSON text: `json` takes it as it is.
    const posted = (await client.callTool({ name: 'notes__read', arguments: { method: 'POST', path: '/v1/notes', json: { title: 'a "quoted" note', tags: ['x'], n: 1 } } })) as ToolResult;
    assert.equal(posted.isError, false, posted.content[0]!.text);
    assert.equal(up.received.at(-1)!.body.toString('utf8'), '{"title":"a \\"quoted\\" note","tags":["x"],"n":1}');
    assert.equal(up.received.at(-1)!.headers['content-type'], 'application/json');
    const typed = (await client.callTool({ name: 'invoke', arguments: { capability: 'notes/read', method: 'POST', path: '/v1/notes', headers: { 'Content-Type': 'application/merge-patch+json' }, json: [1] } })) as ToolResult;
    assert.equal(typed.isError, false, typed.content[0]!.text);
    assert.equal(up.received.at(-1)!.headers['content-type'], 'application/merge-patch+json', "the caller's content type stays");
    const both = (await client.callTool({ name: 'notes__read', arguments: { method: 'POST', path: '/v1/notes', body: 'x', json: {} } })) as ToolResult;
    assert.equal(both.isError, true);
    assert.match(both.content[0]!.text, /^INVALID_ARGUMENT: give one of body, bodyBase64 or json, not body and json/);
    for (const r of [list, read, denied, traversal, posted]) assertNoLeak(JSON.stringify(r), key, 'MCP tool result');
  }

  it('capability ids that would share a tool name (m/a.b, m/a_b) get distinct, stable tools, and the server stays up', async () => {
    for (const id of ['notes/a.b', 'notes/a_b']) {
      const r = await v.cli(['capability', 'create', id, '--provider', 'notes', '--credential', 'notes', '--method', 'GET', '--path', '/v1/notes']);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await v.cli(['agent', 'create', 'mcp-twins'])).code, 0);
    for (const id of ['notes/a.b', 'notes/a_b']) assert.equal((await v.cli(['grant', 'mcp-twins', id])).code, 0);
    const client = await connect(['--agent', 'mcp-twins'], { AIVAULT_DIR: v.dir });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith('notes__'));
      assert.equal(names.length, 2);
      assert.equal(new Set(names).size, 2);
      assert.ok(names.includes('notes__a_b'), 'a lossless id keeps its plain name');
      for (const name of names) {
        const r = (await client.callTool({ name, arguments: { path: '/v1/notes/2' } })) as ToolResult;
        assert.equal(r.isError, false, r.content[0]?.text);
      }
    } finally {
      await client.close();
    }
  });

  it('in-process as a named agent (--agent)', async () => {
    const client = await connect(['--agent', 'mcp-bot'], { AIVAULT_DIR: v.dir });
    try {
      await exercise(client);
    } finally {
      await client.close();
    }
  });

  describe('through the daemon with an agent token', () => {
    let d: RunningDaemon;
    before(async () => {
      d = await startDaemon(v, ['--socket', join(v.dir, 'm.sock')]);
    });
    after(() => d.stop());

    it('serves the same tools, holding only the agent token', async () => {
      const client = await connect([], { AIVAULT_SOCKET: d.socket!, AIVAULT_AGENT_TOKEN: token });
      try {
        await exercise(client);
      } finally {
        await client.close();
      }
    });
  });

  describe('Streamable HTTP on the daemon (/mcp)', () => {
    let d: RunningDaemon;
    before(async () => {
      d = await startDaemon(v, ['--socket', join(v.dir, 'h.sock'), '--listen', '127.0.0.1:0']);
    });
    after(() => d.stop());

    const httpClient = async (bearer: string): Promise<Client> => {
      const transport = new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${bearer}` } } });
      const client = new Client({ name: 'http-test-client', version: '1.0.0' });
      await client.connect(transport);
      return client;
    };

    it('serves the same tools to an agent token', async () => {
      const client = await httpClient(token);
      try {
        await exercise(client);
      } finally {
        await client.close();
      }
      assertNoLeak(d.log(), key, 'daemon log');
      assertNoLeak(d.log(), token, 'daemon log');
    });

    it('refuses a wrong token before any tool runs', async () => {
      const before = up.received.length;
      await assert.rejects(httpClient(`avt_${'0'.repeat(43)}`), /401|AGENT_UNAUTHENTICATED/);
      assert.equal(up.received.length, before);
    });

    it('refuses a request from a web page (Origin header), even with a valid token', async () => {
      const r = await request(`${d.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, origin: 'http://evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(r.statusCode, 403);
      assert.equal(r.headers['x-aivault-error'], 'ORIGIN_REFUSED');
      await r.body.dump();
    });

    it('answers 405 to GET (no server-initiated stream) and 400 to a body that is not JSON', async () => {
      const g = await request(`${d.url}/mcp`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
      assert.equal(g.statusCode, 405);
      await g.body.dump();
      const bad = await request(`${d.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"jsonrpc":' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.headers['x-aivault-error'], 'INVALID_ARGUMENT');
      await bad.body.dump();
    });
  });
});
