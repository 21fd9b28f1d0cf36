// `/gw/PROVIDER/<upstream path>`: how a gateway request (plain or WebSocket upgrade) names
// its provider, path and query, where its agent token is, and which granted capability
// serves it. Shared by the HTTP gateway and the WebSocket one, so both decide alike.

import type { IncomingMessage } from 'node:http';
import type { Broker } from '../broker/broker.ts';
import { AivaultError } from '../errors.ts';
import { assertCleanPath, pathMatchesPrefix } from '../policy/paths.ts';
import type { Snapshot } from '../storage/generation-cache.ts';
import type { AgentRecord } from '../storage/types.ts';

export interface GatewayTarget {
  provider: string;
  path: string;
  query: Array<[string, string]>;
}

/** Request headers an SDK sends that are about this hop, or carry the agent's credential. */
export const GATEWAY_DROPPED = new Set(['host', 'authorization', 'x-api-key', 'content-length', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

/** Splits the raw request target; the raw one, not a WHATWG-normalised one: "/gw/openai/v1/../x" must not become "/gw/openai/x". */
export function parseGatewayTarget(rawTarget: string): GatewayTarget {
  const q = rawTarget.indexOf('?');
  const rawPath = q === -1 ? rawTarget : rawTarget.slice(0, q);
  const rest = rawPath.slice('/gw/'.length);
  const slash = rest.indexOf('/');
  const path = slash === -1 ? '/' : rest.slice(slash);
  assertCleanPath(path);
  return { provider: slash === -1 ? rest : rest.slice(0, slash), path, query: [...new URLSearchParams(q === -1 ? '' : rawTarget.slice(q + 1))] };
}

/** The agent token where an SDK puts its API key: Authorization: Bearer, or x-api-key. */
export function gatewayToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h?.startsWith('Bearer ')) return h.slice(7).trim();
  return typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined;
}

/**
 * The agent's grant of that provider whose methods and path prefixes admit the request: the
 * most specific one (for an upgrade, one that allows WebSockets first). None is a refusal,
 * recorded as the broker records one.
 */
export async function chooseGatewayCapability(broker: Broker, agent: AgentRecord, target: GatewayTarget, method: string, at: Snapshot, websocket = false): Promise<string> {
  const candidates = (await broker.grantedCapabilities(agent, at))
    .filter(({ capability: c, methods }) => c.provider === target.provider && methods.includes(method))
    .flatMap(({ capability: c }) => c.pathPrefixes.filter((p) => pathMatchesPrefix(p, target.path)).map((p) => ({ id: c.id, websocket: c.websocket, depth: p.split('/').filter(Boolean).length, length: p.length })))
    // An upgrade goes to a capability that allows WebSockets if one admits it; then the
    // deepest prefix (by segments: `/` is shallower than `/ws`), then the longest.
    .sort((a, b) => (websocket ? Number(b.websocket) - Number(a.websocket) : 0) || b.depth - a.depth || b.length - a.length);
  const chosen = candidates[0];
  if (!chosen) {
    const refused = new AivaultError('CAPABILITY_NOT_GRANTED', `no granted ${target.provider.slice(0, 64)} capability allows ${method} ${target.path.slice(0, 200)}`);
    return broker.refuseUnserved(agent, { provider: target.provider, method, path: target.path }, websocket, refused);
  }
  return chosen.id;
}

/** The caller's headers worth passing on (not hop-by-hop, not its token, not ours). */
export function forwardedHeaders(req: IncomingMessage, drop: (name: string) => boolean = () => false): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (GATEWAY_DROPPED.has(lower) || lower.startsWith('x-aivault-') || drop(lower)) continue;
    out.push([name, req.rawHeaders[i + 1]!]);
  }
  return out;
}
