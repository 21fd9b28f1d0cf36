// Where the MCP tools get their answers: the broker in this process acting as one agent
// (`aivault mcp` as a named agent, and the daemon's /mcp route), or the daemon through an agent client.

import type { Broker } from '../broker/broker.ts';
import { bodyOf } from '../broker/respond.ts';
import type { AgentClient } from '../sdk/agent-client.ts';
import type { AgentRecord } from '../storage/types.ts';
import type { McpBackend } from './mcp.ts';
import { credentialReady } from '../broker/catalog.ts';
import { requestBody } from '../broker/json-body.ts';

/** `gone`: aborts when the caller goes away, cutting the exchanges it started. */
export function brokerMcpBackend(broker: Broker, agent: AgentRecord, gone?: AbortSignal): McpBackend {
  return {
    capabilities: async () =>
      (await broker.grantedCapabilities(agent)).map(({ capability: c, methods }) => ({ id: c.id, provider: c.provider, description: c.description, ready: credentialReady(c.credential), hosts: c.hosts, methods, pathPrefixes: c.pathPrefixes })),
    invoke: async (r) => {
      const { body: text, json, headers: given, ...rest } = r;
      const sent = requestBody({ body: text, json }, given ?? []);
      const res = await broker.invoke({ ...rest, headers: sent.headers, ...(sent.body ? { body: sent.body } : {}) }, { agent, whole: true, ...(gone ? { signal: gone } : {}) });
      const body = (await bodyOf(res)).toString('utf8');
      await res.done;
      return { status: res.status, contentType: res.headers.find(([k]) => k === 'content-type')?.[1] ?? null, body };
    },
  };
}

export function clientMcpBackend(client: AgentClient): McpBackend {
  return {
    capabilities: () => client.capabilities(),
    invoke: async (r) => {
      const res = await client.invoke({ ...r, whole: true });
      const ct = res.headers['content-type'];
      return { status: res.status, contentType: typeof ct === 'string' ? ct : null, body: await res.text() };
    },
  };
}
