// The daemon's JSON API. Agents authenticate with `Authorization: Bearer <agent token>`;
// every invoke goes through the same broker pipeline as the CLI. The upstream answer
// streams back as this response; a denial is an RFC 9457 problem document (status.ts) with
// 401, 403, 429 (with Retry-After) or 4xx/5xx.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { InvokeRequest, InvokeResponse } from '../broker/broker.ts';
import type { Services } from '../services.ts';
import type { Snapshot } from '../storage/generation-cache.ts';
import { chooseGatewayCapability, forwardedHeaders, gatewayToken, parseGatewayTarget } from './gateway-route.ts';
import { AivaultError, errorKind } from '../errors.ts';
import { ReplayGuard, SIGNATURE_HEADERS, signerOf } from '../policy/request-signature.ts';
import { runAs } from '../audit/actor.ts';
import { OwnerCall, runOwnerOperation } from '../owner/operations.ts';
import type { AgentRecord } from '../storage/types.ts';
import { bodyOf } from '../broker/respond.ts';
import { MAX_API_BODY, MAX_OWNER_BODY, readBody, type Admission } from './limits.ts';
import { renderAnswer, type Render } from '../broker/render.ts';
import { assertNotFromWebPage } from './origin.ts';
import { requestTarget } from './request-target.ts';
import { refusal, type RefusalAudience } from './status.ts';
import { brokerMcpBackend } from './mcp-backends.ts';
import { credentialReady } from '../broker/catalog.ts';
import { requestBody } from '../broker/json-body.ts';
import { lazyImport } from '../lazy.ts';

/** The MCP SDK and what it brings (about 20 MB resident) load with the first `/mcp` request, not with every daemon. */
const mcpModules = lazyImport(async () => {
  const [{ StreamableHTTPServerTransport }, { createMcpServer }] = await Promise.all([import('@modelcontextprotocol/sdk/server/streamableHttp.js'), import('./mcp.ts')]);
  return { StreamableHTTPServerTransport, createMcpServer };
});

const pairs = z.union([z.array(z.tuple([z.string(), z.string()])), z.record(z.string(), z.union([z.string(), z.array(z.string())]))]);
const InvokeBody = z.strictObject({
  capability: z.string().min(1).max(200),
  method: z.string().min(1).max(16).default('GET'),
  path: z.string().max(8192).optional(),
  url: z.string().max(8192).optional(),
  host: z.string().max(300).optional(),
  query: pairs.optional(),
  headers: pairs.optional(),
  body: z.string().optional(),
  bodyBase64: z.string().optional(),
  /** Any JSON value, sent serialised (typed application/json unless a content type is given). */
  json: z.unknown().optional(),
  whole: z.boolean().optional(),
  render: z
    .discriminatedUnion('as', [
      z.strictObject({ as: z.literal('json') }),
      z.strictObject({ as: z.literal('markdown'), namespace: z.string().max(64).optional(), exclude: z.array(z.string().max(256)).max(64).optional(), wrap: z.array(z.string().max(256)).max(64).optional() }),
    ])
    .optional(),
});

const FlowRunBody = z.strictObject({ flow: z.string().min(1).max(200), body: z.string().optional(), bodyBase64: z.string().optional(), contentType: z.string().max(200).optional() });

function toPairs(p: z.infer<typeof pairs> | undefined): Array<[string, string]> {
  if (!p) return [];
  if (Array.isArray(p)) return p.map(([k, v]) => [k, v]);
  return Object.entries(p).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x): [string, string] => [k, x]) : [[k, v] as [string, string]]));
}

/** An answer given before the request's body was read closes the connection: nothing is drained. */
function closeIfUnread(req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)) res.setHeader('connection', 'close');
}

function sendError(req: IncomingMessage, res: ServerResponse, err: AivaultError, audience: RefusalAudience): void {
  if (res.headersSent) return cut(res, err);
  closeIfUnread(req, res);
  const { status, headers, body } = refusal(err, audience);
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end(body);
}

function parseJson(body: Buffer | undefined): unknown {
  try {
    return JSON.parse((body ?? Buffer.alloc(0)).toString('utf8'));
  } catch {
    throw new AivaultError('INVALID_ARGUMENT', 'the request body is not JSON');
  }
}

function headerPairs(req: IncomingMessage): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) out.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
  return out;
}

/** What aivault did, on every answer to an invoke: its audit record, the credential and the URL as addressed. */
function setPlannedHeaders(res: ServerResponse, response: InvokeResponse): void {
  res.setHeader('x-aivault-audit-seq', String(response.auditSeq));
  res.setHeader('x-aivault-credential', response.planned.credential);
  res.setHeader('x-aivault-upstream-url', response.planned.url);
}

/**
 * Ends an answer that failed after its head went out. Over TCP with a reset: an answer with
 * no length and no chunks (to an HTTP/1.0 client) ends where the connection does, so a plain
 * close would read as its end. (A Unix socket has no reset; its clients are ours, with trailers.)
 */
function cut(res: ServerResponse, err: Error): void {
  const socket = res.socket as Socket | null;
  try {
    if (socket && !socket.destroyed) return void socket.resetAndDestroy();
  } catch {
    // not TCP
  }
  res.destroy(err);
}

/** Streams an invoke's answer as this response; the upstream side is dropped if the client goes away. */
async function stream(req: IncomingMessage, res: ServerResponse, response: InvokeResponse): Promise<void> {
  // A small answer is read whole first: a failure is then still a refusal, with its own status.
  const whole = await response.whole;
  res.statusCode = response.status;
  for (const [k, v] of response.headers) res.appendHeader(k, v);
  setPlannedHeaders(res, response);
  if (whole) return void res.end(whole);
  res.on('close', () => {
    if (!res.writableFinished) response.body.destroy();
  });
  // A failure after the head went out (the size cap passed, the upstream cut off) must not
  // read as a short 200: the connection is cut, or, for a client that accepts trailers (the
  // SDK and CLI), the answer ends with the failure's code in one.
  const trailers = /(^|,)\s*trailers\s*(,|;|$)/i.test(String(req.headers.te ?? ''));
  if (trailers) res.setHeader('trailer', 'x-aivault-error');
  response.body.on('error', (err) => {
    if (!trailers) return void cut(res, err);
    res.addTrailers({ 'x-aivault-error': err instanceof AivaultError ? err.code : 'UPSTREAM_ERROR' });
    res.end();
  });
  // Streams as it comes, held back at most the scrubber's window (respond.ts).
  response.body.pipe(res);
  await response.done.catch(() => {});
}

/** An invoke's answer rendered for an LLM (`aivault json` / `markdown`), here where the scrubber is. */
async function sendRendered(res: ServerResponse, response: InvokeResponse, render: Render): Promise<void> {
  const body = await bodyOf(response);
  await response.done;
  const text = renderAnswer(render, response, body, response.scrubText);
  res.statusCode = response.status;
  res.setHeader('content-type', render.as === 'json' ? 'application/json' : 'text/markdown; charset=utf-8');
  setPlannedHeaders(res, response);
  res.end(text);
}

/** Aborts when the caller closes before its answer is complete: the exchange upstream is cut then too. */
function goneSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new AivaultError('CLIENT_GONE', 'the caller closed the connection before the answer was complete'));
  });
  return controller.signal;
}

function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
}

function signedHead(req: IncomingMessage) {
  return { method: req.method ?? 'GET', target: req.url ?? '/', headers: headerPairs(req) };
}

export function createApiHandler(services: Services, log: Logger, admission: Admission) {
  const { broker, agents, owners, reads } = services;
  const guard = new ReplayGuard(services.vault.storage);
  const { bodyTimeoutMs } = admission.limits;
  /**
   * Reads the body of a request whose sender is known: only now, and only if its announced
   * size fits, is a client that asked told to send it. Its bytes are held against the daemon's
   * body budget until the answer is done.
   */
  const bodyOf = (req: IncomingMessage, res: ServerResponse, limit: number, arrived: number) => {
    const hold = admission.bodyHold();
    res.once('close', hold.release);
    const body = readBody(req, limit, arrived, bodyTimeoutMs, hold);
    if (/^100-continue$/i.test(req.headers.expect ?? '')) res.writeContinue();
    return body;
  };
  /**
   * The body of a signed request whose signer and timestamp passed, read before its signature
   * can be checked: meanwhile it holds one of the few unverified slots, a bounded number per
   * signer id (ids are not secret, so a flood naming one takes only that id's share).
   */
  const unverifiedBodyOf = (req: IncomingMessage, res: ServerResponse, limit: number, arrived: number) => async () => {
    const release = admission.unverified(signerOf({ headers: headerPairs(req) }));
    try {
      return await bodyOf(req, res, limit, arrived);
    } finally {
      release();
    }
  };

  /**
   * The agent that sent `req`, then its body (at most `limit` bytes): a signed request (Ed25519)
   * if it carries a signature and `signed` allows it, otherwise the token in `token`. The body
   * is read only once the sender is known: a token's agent from the headers alone, a signed
   * request's signer, status and timestamp. Then the request holds one of its agent's in-flight slots.
   * `at`: the vault as the request found it, which the rest of the request is judged by.
   */
  const authenticate = async (req: IncomingMessage, res: ServerResponse, arrived: number, limit: number, token = bearer(req), signed = true): Promise<{ agent: AgentRecord; body: Buffer | undefined; at: Snapshot }> => {
    const at = await reads.snapshot();
    if (signed && req.headers[SIGNATURE_HEADERS.signature] !== undefined) {
      const sender = await agents.authenticateSigned(signedHead(req), unverifiedBodyOf(req, res, limit, arrived), guard, at);
      res.once('close', admission.agent(sender.agent.id));
      return { ...sender, at };
    }
    const agent = await agents.authenticate(token, at);
    res.once('close', admission.agent(agent.id));
    return { agent, body: await bodyOf(req, res, limit, arrived), at };
  };

  /**
   * `/gw/PROVIDER/<upstream path>`: for SDKs whose base URL points here. The agent token
   * arrives where the SDK puts its API key (Authorization: Bearer, or x-api-key), is checked
   * and dropped; the capability is the agent's grant of that provider whose methods and path
   * prefixes admit the request (the most specific one).
   */
  const gateway = async (req: IncomingMessage, res: ServerResponse, arrived: number): Promise<string> => {
    const target = parseGatewayTarget(req.url ?? '/');
    const { agent, body, at } = await authenticate(req, res, arrived, MAX_API_BODY, gatewayToken(req));
    const method = (req.method ?? 'GET').toUpperCase();
    const capability = await chooseGatewayCapability(broker, agent, target, method, at);
    // The SDK client's fetch names the host it meant (for providers with several hosts).
    const host = typeof req.headers['x-aivault-target-host'] === 'string' ? req.headers['x-aivault-target-host'] : undefined;
    const response = await broker.invoke(
      { capability, method, path: target.path, ...(host ? { host } : {}), query: target.query, headers: forwardedHeaders(req), ...(body ? { body } : {}) },
      { agent, signal: goneSignal(res), at },
    );
    await stream(req, res, response);
    return agent.id;
  };

  /**
   * `/mcp`: the MCP Streamable HTTP transport, stateless (a server per request, so any
   * replica can answer any request). The agent token rides on every request as a Bearer.
   */
  const mcp = async (req: IncomingMessage, res: ServerResponse, arrived: number): Promise<string> => {
    if (req.method !== 'POST') {
      // No server-initiated stream: the spec lets a server answer 405 to GET (and DELETE, sessionless).
      closeIfUnread(req, res);
      res.statusCode = 405;
      res.setHeader('allow', 'POST');
      res.end();
      return '';
    }
    const { agent, body: raw } = await authenticate(req, res, arrived, MAX_API_BODY, bearer(req), false);
    const message = parseJson(raw);
    // One request, one call: a JSON-RPC batch (which MCP dropped in 2025-06-18) would run up
    // to a hundred invokes on one in-flight slot.
    if (Array.isArray(message)) throw new AivaultError('INVALID_ARGUMENT', 'JSON-RPC batches are not served: send one message per request');
    const { createMcpServer, StreamableHTTPServerTransport } = await mcpModules();
    const server = await createMcpServer(brokerMcpBackend(broker, agent, goneSignal(res)), agent.name);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, message);
    return agent.id;
  };

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const arrived = Date.now();
    let url: URL | undefined;
    let agentId: string | undefined;
    try {
      url = requestTarget(req);
      if (url.pathname === '/v1/health' && req.method === 'GET') {
        closeIfUnread(req, res);
        res.setHeader('content-type', 'application/json');
        res.end('{"ok":true}');
        return;
      }
      assertNotFromWebPage(req);
      if (url.pathname === '/mcp') {
        agentId = await mcp(req, res, arrived);
        log.info({ route: 'mcp', agent: agentId, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'mcp');
        return;
      }
      if (url.pathname.startsWith('/gw/')) {
        agentId = await gateway(req, res, arrived);
        log.info({ route: 'gateway', agent: agentId, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'invoke');
        return;
      }
      if (url.pathname === '/v1/flows/run' && req.method === 'POST') {
        const { agent, body: raw } = await authenticate(req, res, arrived, MAX_API_BODY);
        agentId = agent.id;
        const parsed = FlowRunBody.safeParse(parseJson(raw));
        if (!parsed.success) throw new AivaultError('INVALID_ARGUMENT', 'a flow run is {"flow", "body"?, "bodyBase64"?, "contentType"?}');
        const f = parsed.data;
        const body = f.body !== undefined ? Buffer.from(f.body, 'utf8') : f.bodyBase64 !== undefined ? Buffer.from(f.bodyBase64, 'base64') : undefined;
        const result = await broker.runFlow(f.flow, { ...(body ? { body } : {}), ...(f.contentType ? { contentType: f.contentType } : {}) }, { agent, signal: goneSignal(res) });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(result));
        log.info({ route: 'flow', agent: agentId, flow: f.flow, ms: Math.round(performance.now() - started) }, 'flow');
        return;
      }
      if (url.pathname === '/v1/owner/rpc' && req.method === 'POST') {
        if (req.headers[SIGNATURE_HEADERS.signature] === undefined) throw new AivaultError('OWNER_ROUTE', 'owner routes need a request signed by an owner key');
        // As for agents: the signer and timestamp first, then at most an owner call's worth of body.
        const { owner, body: raw } = await owners.authenticateSigned(signedHead(req), unverifiedBodyOf(req, res, MAX_OWNER_BODY, arrived), guard);
        const call = OwnerCall.safeParse(parseJson(raw));
        if (!call.success) throw new AivaultError('INVALID_ARGUMENT', 'an owner call is {"op": "...", "args": {...}}');
        const result = await runAs(`owner:${owner.id}`, () => runOwnerOperation(services, call.data.op, call.data.args));
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ result }));
        log.info({ route: 'owner', owner: owner.id, op: call.data.op, ms: Math.round(performance.now() - started) }, 'owner call');
        return;
      }
      if (url.pathname.startsWith('/v1/owner/')) {
        throw new AivaultError('OWNER_ROUTE', 'owner routes need an owner signature; agents can never use them');
      }
      if (url.pathname === '/v1/capabilities' && req.method === 'GET') {
        const { agent, at } = await authenticate(req, res, arrived, 0);
        agentId = agent.id;
        const granted = await broker.grantedCapabilities(agent, at);
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify(
            granted.map(({ capability: c, methods, expiresAt }) => ({
              id: c.id,
              provider: c.provider,
              description: c.description,
              ready: credentialReady(c.credential),
              hosts: c.hosts,
              methods,
              pathPrefixes: c.pathPrefixes,
              expiresAt,
            })),
          ),
        );
        return;
      }
      if (url.pathname === '/v1/invoke' && req.method === 'POST') {
        const { agent, body: raw, at } = await authenticate(req, res, arrived, MAX_API_BODY);
        agentId = agent.id;
        const parsed = InvokeBody.safeParse(parseJson(raw));
        if (!parsed.success) throw new AivaultError('INVALID_ARGUMENT', `invalid invoke request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'} ${i.message}`).join('; ')}`);
        const b = parsed.data;
        const { body, headers } = requestBody(b, toPairs(b.headers));
        const request: InvokeRequest = {
          capability: b.capability,
          method: b.method,
          ...(b.path !== undefined ? { path: b.path } : {}),
          ...(b.url !== undefined ? { url: b.url } : {}),
          ...(b.host !== undefined ? { host: b.host } : {}),
          query: toPairs(b.query),
          headers,
          ...(body ? { body } : {}),
        };
        // A rendering reads the whole body first, and so may a client that says so.
        const response = await broker.invoke(request, { agent, signal: goneSignal(res), whole: b.whole === true || b.render !== undefined, at });
        if (b.render) await sendRendered(res, response, b.render);
        else await stream(req, res, response);
        log.info({ route: 'invoke', agent: agentId, capability: b.capability, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'invoke');
        return;
      }
      throw new AivaultError('ROUTE_NOT_FOUND', 'no such route');
    } catch (err) {
      const e = err instanceof AivaultError ? err : new AivaultError('INTERNAL_ERROR', 'unexpected error');
      if (!(err instanceof AivaultError)) log.error({ kind: errorKind(err) }, 'unexpected error');
      log.info({ route: url?.pathname ?? '(not a path)', agent: agentId, code: e.code, ms: Math.round(performance.now() - started) }, 'refused');
      sendError(req, res, e, url?.pathname.startsWith('/gw/') ? 'gateway' : 'api');
    }
  };
}
