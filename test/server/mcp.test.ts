// `aivault mcp` in its own process, driven by the MCP SDK's own client over stdio.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI, assertNoLeak, canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type ToolResult = { isError?: boolean; content: Array<{ type: string; text: string }> };

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
    await ok(['capability', 'create', 'notes/read', '--provider', 'notes', '--credential', 'notes', '--method', 'GET', '--path', '/v1/notes']);
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
    const traversal = (await client.callTool({ name: 'invoke', arguments: { capability: 'notes/read', path: '/v1/notes/../../admin' } })) as ToolResult;
    assert.match(traversal.content[0]!.text, /^MALFORMED_PATH: /);
    for (const r of [list, read, denied, traversal]) assertNoLeak(JSON.stringify(r), key, 'MCP tool result');
  }

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
});
