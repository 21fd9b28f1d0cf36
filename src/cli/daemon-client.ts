// When an agent credential and a daemon address are in the environment, the CLI acts as
// that agent through the daemon instead of opening the vault itself.

import { createAgentClient, type AgentClient } from '../sdk/agent-client.ts';

export function agentClientFromEnv(env: NodeJS.ProcessEnv = process.env): AgentClient | undefined {
  const token = env.AIVAULT_AGENT_TOKEN;
  const socketPath = env.AIVAULT_SOCKET;
  const url = env.AIVAULT_URL;
  if (!token || (!socketPath && !url)) return undefined;
  return createAgentClient({ token, ...(socketPath ? { socketPath } : { url: url! }) });
}
