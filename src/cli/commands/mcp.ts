// `aivault mcp [--agent NAME]`: the MCP server over stdio. With --agent it runs the broker
// in-process as that agent (the owner's machine); otherwise it acts through the daemon
// with AIVAULT_AGENT_TOKEN and AIVAULT_SOCKET/AIVAULT_URL. Stdout is the protocol: nothing
// else is printed there.

import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Command } from 'commander';
import { Broker } from '../../broker/broker.ts';
import { AivaultError } from '../../errors.ts';
import { builtinRegistry } from '../../registry/registry.ts';
import { createMcpServer, type McpBackend } from '../../server/mcp.ts';
import { Vault } from '../../vault/vault.ts';
import { readPassphrase, vaultDir, type GlobalOptions } from '../context.ts';
import { agentClientFromEnv } from '../daemon-client.ts';

async function readBody(body: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerMcp(program: Command): void {
  program
    .command('mcp')
    .description("serve an agent's granted capabilities as MCP tools over stdio")
    .option('--agent <name>', 'act in-process as this agent (owner machine); otherwise use AIVAULT_AGENT_TOKEN with the daemon')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { agent?: string }>();
      let backend: McpBackend;
      let name: string;
      let close: () => Promise<void>;
      if (o.agent) {
        const vault = await Vault.open({ dir: vaultDir(o), readPassphrase });
        const broker = new Broker(vault, await builtinRegistry());
        const agent = await broker.agents.get(o.agent);
        if (agent.status !== 'active') throw new AivaultError('AGENT_REVOKED', `${agent.name} is revoked`);
        name = agent.name;
        backend = {
          capabilities: async () =>
            (await broker.grantedCapabilities(agent)).map(({ capability: c, methods }) => ({ id: c.id, provider: c.provider, description: c.description, ready: c.credential.missing.length === 0, hosts: c.hosts, methods, pathPrefixes: c.pathPrefixes })),
          invoke: async (r) => {
            const { body: text, ...rest } = r;
            const res = await broker.invoke({ ...rest, ...(text !== undefined ? { body: Buffer.from(text, 'utf8') } : {}) }, { agent });
            const body = await readBody(res.body);
            await res.done;
            return { status: res.status, contentType: res.headers.find(([k]) => k === 'content-type')?.[1] ?? null, body };
          },
        };
        close = async () => {
          await broker.close();
          await vault.close();
        };
      } else {
        const client = agentClientFromEnv();
        if (!client) throw new AivaultError('INVALID_ARGUMENT', 'give --agent NAME, or set AIVAULT_AGENT_TOKEN and AIVAULT_SOCKET (or AIVAULT_URL)');
        name = 'agent';
        backend = {
          capabilities: () => client.capabilities(),
          invoke: async (r) => {
            const res = await client.invoke(r);
            const ct = res.headers['content-type'];
            return { status: res.status, contentType: typeof ct === 'string' ? ct : null, body: await res.text() };
          },
        };
        close = () => client.close();
      }
      const server = await createMcpServer(backend, name);
      const transport = new StdioServerTransport();
      await server.connect(transport);
      await new Promise<void>((resolve) => {
        transport.onclose = () => resolve();
        process.stdin.once('end', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await server.close();
      await close();
    });
}
