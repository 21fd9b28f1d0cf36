// `aivault mcp [--agent NAME]`: the MCP server over stdio. With --agent it runs the broker
// in-process as that agent (the owner's machine); otherwise it acts through the daemon
// with AIVAULT_AGENT_TOKEN and AIVAULT_SOCKET/AIVAULT_URL. Stdout is the protocol: nothing
// else is printed there. The daemon serves the same tools over Streamable HTTP at /mcp.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { McpBackend } from '../../server/mcp.ts';
import { readPassphrase, vaultDir, type GlobalOptions } from '../context.ts';
import { agentClientFromEnv } from '../daemon-client.ts';

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
      const [{ StdioServerTransport }, { createMcpServer }, { brokerMcpBackend, clientMcpBackend }] = await Promise.all([
        import('@modelcontextprotocol/sdk/server/stdio.js'),
        import('../../server/mcp.ts'),
        import('../../server/mcp-backends.ts'),
      ]);
      if (o.agent) {
        const [{ Vault }, { composeServices }, { builtinRegistry }] = await Promise.all([import('../../vault/vault.ts'), import('../../services.ts'), import('../../registry/registry.ts')]);
        const vault = await Vault.open({ dir: vaultDir(o), readPassphrase });
        const services = composeServices(vault, await builtinRegistry());
        const agent = await services.agents.get(o.agent);
        if (agent.status !== 'active') throw new AivaultError('AGENT_REVOKED', `${agent.name} is revoked`);
        name = agent.name;
        backend = brokerMcpBackend(services.broker, agent);
        close = async () => {
          await services.close();
          await vault.close();
        };
      } else {
        const client = await agentClientFromEnv(o);
        if (!client) throw new AivaultError('INVALID_ARGUMENT', 'give --agent NAME, or set AIVAULT_AGENT_TOKEN and AIVAULT_SOCKET (or AIVAULT_URL)');
        name = 'agent';
        backend = clientMcpBackend(client);
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
