// `aivault mcp`: an MCP server (stdio) for one agent identity. Tools: `list_capabilities`,
// a generic `invoke`, and one tool per granted capability. Results carry the scrubbed
// upstream status and body; a denial is a tool error: `CODE: message` as text, and the
// RFC 9457 problem document (code, field…) as its structured content.

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AivaultError } from '../errors.ts';
import { problemOf } from '../problem.ts';
import { VERSION } from '../version.ts';

export interface McpCapability {
  id: string;
  provider: string;
  description: string | null;
  ready: boolean;
  hosts: readonly string[];
  methods: readonly string[];
  pathPrefixes: readonly string[];
}

export interface McpInvoke {
  capability: string;
  method: string;
  path?: string;
  host?: string;
  query?: Array<[string, string]>;
  headers?: Array<[string, string]>;
  body?: string;
  /** A JSON value to send as the body, serialised (instead of `body`). */
  json?: unknown;
}

/** Where the tools get their answers: the in-process broker, or the daemon. */
export interface McpBackend {
  capabilities(): Promise<McpCapability[]>;
  invoke(request: McpInvoke): Promise<{ status: number; contentType: string | null; body: string }>;
}

/** Text past this is cut from a tool result (an LLM context is not a file store). */
export const MAX_RESULT_CHARS = 256 * 1024;

/**
 * A capability's tool name: unique and stable. `provider/name` becomes `provider__name`
 * when that is lossless (no character replaced, at most 64 long); otherwise (`m/a.b`, which
 * would meet `m/a_b`, or a long id) a cut of it plus 8 hex digits of the id's SHA-256.
 */
export function toolName(capability: string): string {
  const plain = capability.replace(/\//g, '__');
  if (/^[A-Za-z0-9_-]{1,64}$/.test(plain)) return plain;
  const hash = createHash('sha256').update(capability).digest('hex').slice(0, 8);
  return `${plain.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 55)}_${hash}`;
}

const record = z.record(z.string(), z.string());
const requestShape = {
  method: z.string().describe('HTTP method, e.g. GET or POST').optional(),
  path: z.string().describe("request path under the capability's prefixes, e.g. /v1/chat/completions").optional(),
  host: z.string().describe('which host, when the capability allows several').optional(),
  query: record.describe('query parameters').optional(),
  headers: record.describe('request headers (credentials are added by aivault; any you send are dropped)').optional(),
  body: z.string().describe('request body as text; for JSON, give json instead').optional(),
  json: z.unknown().describe('request body as a JSON value (object, array…), sent as JSON with content-type application/json unless headers set one; instead of body').optional(),
};

function failure(err: unknown): CallToolResult {
  const e = err instanceof AivaultError ? err : new AivaultError('INTERNAL_ERROR', 'unexpected error');
  return { isError: true, content: [{ type: 'text', text: `${e.code}: ${e.message}` }], structuredContent: { ...problemOf(e) } };
}

function resultText(r: { status: number; contentType: string | null; body: string }): string {
  const body = r.body.length > MAX_RESULT_CHARS ? `${r.body.slice(0, MAX_RESULT_CHARS)}\n[… ${r.body.length - MAX_RESULT_CHARS} more characters cut]` : r.body;
  return `HTTP ${r.status}${r.contentType ? ` (${r.contentType})` : ''}\n${body}`;
}

export async function createMcpServer(backend: McpBackend, name: string): Promise<McpServer> {
  const server = new McpServer({ name: 'aivault', version: VERSION }, { instructions: `Credentialed API access for agent ${name}. Secrets never appear here: call a capability and aivault injects them.` });
  const run = async (request: McpInvoke): Promise<CallToolResult> => {
    try {
      const r = await backend.invoke(request);
      return { isError: r.status >= 400, content: [{ type: 'text', text: resultText(r) }] };
    } catch (err) {
      return failure(err);
    }
  };
  const pairs = (r: Record<string, string> | undefined): Array<[string, string]> => Object.entries(r ?? {});
  const bodyOf = (a: { body?: string | undefined; json?: unknown }) => ({ ...(a.body !== undefined ? { body: a.body } : {}), ...(a.json !== undefined ? { json: a.json } : {}) });

  server.registerTool('list_capabilities', { description: 'List the capabilities this agent may invoke, with methods, hosts and path prefixes.' }, async () => {
    try {
      return { content: [{ type: 'text', text: JSON.stringify(await backend.capabilities(), null, 2) }] };
    } catch (err) {
      return failure(err);
    }
  });

  server.registerTool(
    'invoke',
    { description: 'Invoke any granted capability by id (see list_capabilities).', inputSchema: { capability: z.string().describe('capability id, e.g. openai/chat-completions'), ...requestShape } },
    async (a) => run({ capability: a.capability, method: a.method ?? 'GET', ...(a.path ? { path: a.path } : {}), ...(a.host ? { host: a.host } : {}), query: pairs(a.query), headers: pairs(a.headers), ...bodyOf(a) }),
  );

  const named = new Set(['list_capabilities', 'invoke']);
  for (const cap of await backend.capabilities()) {
    // Names are unique by construction; should two ever meet, the second is left out rather
    // than taking the server down (it stays reachable through `invoke`).
    if (named.has(toolName(cap.id))) continue;
    named.add(toolName(cap.id));
    server.registerTool(
      toolName(cap.id),
      {
        description: `${cap.description ?? cap.id} (${cap.id}: ${cap.methods.join('/')} ${cap.pathPrefixes.join(', ')} on ${cap.hosts.join(', ')}${cap.ready ? '' : '; not ready'})`,
        inputSchema: requestShape,
      },
      async (a) => run({ capability: cap.id, method: a.method ?? cap.methods[0] ?? 'GET', ...(a.path ? { path: a.path } : {}), ...(a.host ? { host: a.host } : {}), query: pairs(a.query), headers: pairs(a.headers), ...bodyOf(a) }),
    );
  }
  return server;
}
