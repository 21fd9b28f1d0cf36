// The agent side: talks to `aivault serve` over its Unix socket or loopback URL with an
// agent token. It never sees a secret: only capability ids and scrubbed responses.

import type { KeyObject } from 'node:crypto';
import type { Agent as HttpAgent, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Agent as UndiciAgent } from 'undici';
import type WebSocket from 'ws';
import { defaultPort, hostMatches, portOf } from '../policy/hosts.ts';
import type { FlowResult } from '../broker/flows.ts';
import type { Render } from '../broker/render.ts';
import { signRequest } from '../policy/request-signature.ts';
import { AivaultError } from '../errors.ts';
import { errorFromRefusal } from '../problem.ts';

// node:stream as CommonJS: its ESM facade costs an agent's one-shot `invoke` several ms.
const { pipeline, Transform } = process.getBuiltinModule('node:stream');

export interface AgentClientOptions {
  /** The daemon's Unix socket (AIVAULT_SOCKET). */
  socketPath?: string;
  /** The daemon's loopback URL (AIVAULT_URL), when not using the socket. */
  url?: string;
  /** The agent token (AIVAULT_AGENT_TOKEN)… */
  token?: string;
  /** …or the agent's id and Ed25519 private key (PEM or KeyObject): every request is signed. */
  agentId?: string;
  privateKey?: string | KeyObject;
}

export interface AgentInvokeRequest {
  capability: string;
  method?: string;
  path?: string;
  url?: string;
  host?: string;
  query?: Array<[string, string]> | Record<string, string | string[]>;
  headers?: Array<[string, string]> | Record<string, string>;
  body?: string | Uint8Array;
  /** The body as a JSON value (instead of `body`): sent serialised, as application/json unless `headers` gives a content type. */
  json?: unknown;
  /** Have the daemon render the answer for an LLM (what `aivault json` / `markdown` print), scrubbed. */
  render?: Render;
  /**
   * The caller will read the whole body before showing any of it: the daemon then releases
   * nothing on a timer, so a secret an upstream sends slowly is still found whole.
   */
  whole?: boolean;
}

export interface AgentInvokeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Fails at its end, with the daemon's code, if the answer failed after its head went out. */
  body: Readable;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
}

export interface CapabilityInfo {
  id: string;
  provider: string;
  description: string | null;
  ready: boolean;
  hosts: string[];
  methods: string[];
  pathPrefixes: string[];
  expiresAt: string | null;
}

export interface AgentClient {
  invoke(request: AgentInvokeRequest): Promise<AgentInvokeResponse>;
  capabilities(): Promise<CapabilityInfo[]>;
  /**
   * A WHATWG fetch for SDKs that accept a custom one: a request to a provider's real URL
   * (https://api.openai.com/v1/…) goes through the daemon's gateway under this agent's
   * grant; the SDK's own API key header is dropped.
   */
  fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  /**
   * A WebSocket through the gateway to a granted capability that allows it, e.g.
   * `webSocket('openai', '/v1/realtime?model=gpt-realtime')`; over the Unix socket too.
   * Resolves once open; a refusal rejects with aivault's error code. Token agents only.
   */
  webSocket(provider: string, pathAndQuery: string, options?: { protocols?: string[]; headers?: Record<string, string> }): Promise<WebSocket>;
  /** Runs a granted flow; an acquired secret is stored in the vault, the result is its redacted shape. */
  runFlow(flow: string, input?: { body?: string | Uint8Array; contentType?: string }): Promise<FlowResult>;
  close(): Promise<void>;
}

async function bodyText(res: IncomingMessage): Promise<string> {
  return Buffer.concat(await res.toArray()).toString('utf8');
}

async function denial(res: IncomingMessage): Promise<AivaultError> {
  return errorFromRefusal(await bodyText(res).catch(() => ''), res.headers['x-aivault-error'], 'refused by aivault');
}

/** The body, failing at its end if the daemon's trailer says the answer failed after it started. */
function checkedBody(res: IncomingMessage): Readable {
  const checked = new Transform({
    transform: (chunk, _encoding, done) => done(null, chunk),
    flush: (done) => {
      const code = res.trailers['x-aivault-error'];
      done(code === undefined ? null : errorFromRefusal('', code, 'the answer failed after it started; what arrived is incomplete'));
    },
  });
  pipeline(res, checked, () => {});
  return checked;
}

export function createAgentClient(options: AgentClientOptions): AgentClient {
  if (!options.socketPath && !options.url) throw new AivaultError('INVALID_ARGUMENT', 'give socketPath or url');
  if (!options.token && !(options.agentId && options.privateKey)) throw new AivaultError('INVALID_ARGUMENT', 'give token, or agentId and privateKey');
  const base = options.socketPath ? 'http://aivault' : options.url!.replace(/\/$/, '');
  const daemon = new URL(base);
  // The API calls go out on node:http (as CommonJS: its ESM facade would load Node's own
  // undici), so a one-shot `aivault invoke` loads no HTTP library; undici only for `fetch`.
  const http = process.getBuiltinModule(daemon.protocol === 'https:' ? 'node:https' : 'node:http') as typeof import('node:http');
  const keepAlive: HttpAgent = new http.Agent({ keepAlive: true });
  let dispatcher: UndiciAgent | undefined;
  const undici = async () => {
    const { Agent, fetch } = await import('undici');
    dispatcher ??= new Agent(options.socketPath ? { connect: { socketPath: options.socketPath } } : {});
    return { fetch, dispatcher };
  };
  const privateKey = options.privateKey === undefined ? undefined : typeof options.privateKey === 'string' ? process.getBuiltinModule('node:crypto').createPrivateKey(options.privateKey) : options.privateKey;

  const authorize = (method: string, target: string, headers: Array<[string, string]>, body: Uint8Array | undefined): Array<[string, string]> =>
    privateKey ? signRequest({ method, target, headers, body }, options.agentId!, privateKey) : [...headers, ['authorization', `Bearer ${options.token}`]];

  const call = async (path: string, init: { method: 'GET' | 'POST'; body?: string; headers?: Array<[string, string]> }) => {
    const headers = authorize(init.method, path, [...(init.body ? [['content-type', 'application/json'] as [string, string]] : []), ...(init.headers ?? [])], init.body === undefined ? undefined : Buffer.from(init.body));
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = http.request(
        {
          ...(options.socketPath ? { socketPath: options.socketPath } : { hostname: daemon.hostname, port: daemon.port }),
          path,
          method: init.method,
          headers: [...headers, ['host', daemon.host], ...(init.body === undefined ? [] : [['content-length', String(Buffer.byteLength(init.body))]])].flat(),
          agent: keepAlive,
        },
        resolve,
      );
      req.on('error', () => reject(new AivaultError('DAEMON_UNAVAILABLE', `the aivault daemon at ${options.socketPath ?? options.url} does not answer`)));
      req.end(init.body);
    });
  };

  let granted: Promise<CapabilityInfo[]> | undefined;
  const capabilities = async (): Promise<CapabilityInfo[]> => {
    const res = await call('/v1/capabilities', { method: 'GET' });
    if (res.headers['x-aivault-error'] !== undefined) throw await denial(res);
    return JSON.parse(await bodyText(res)) as CapabilityInfo[];
  };

  const gatewayFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    const port = portOf(url.port, url.protocol);
    granted ??= capabilities();
    const caps = await granted.catch((err: unknown) => {
      granted = undefined;
      throw err;
    });
    const cap = caps.find((c) => c.hosts.some((h) => hostMatches(h, url.hostname, port, defaultPort(url.protocol))));
    if (!cap) throw new AivaultError('CAPABILITY_NOT_GRANTED', `no granted capability reaches ${url.hostname}`);
    const target = `/gw/${cap.provider}${url.pathname}${url.search}`;
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
    const headers: Array<[string, string]> = [];
    req.headers.forEach((value, name) => {
      if (!['authorization', 'x-api-key', 'host', 'content-length', 'connection'].includes(name)) headers.push([name, value]);
    });
    headers.push(['x-aivault-target-host', url.port ? `${url.hostname}:${url.port}` : url.hostname]);
    const signed = authorize(req.method, target, headers, body);
    const { fetch, dispatcher } = await undici();
    const res = await fetch(`${base}${target}`, { method: req.method, headers: signed, ...(body ? { body } : {}), dispatcher, ...(req.signal ? { signal: req.signal } : {}) } as Parameters<typeof fetch>[1]);
    return res as unknown as Response;
  };

  const webSocket = async (provider: string, pathAndQuery: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<WebSocket> => {
    if (!options.token) throw new AivaultError('INVALID_ARGUMENT', 'WebSocket upgrades authenticate with an agent token');
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(provider) || !pathAndQuery.startsWith('/')) throw new AivaultError('INVALID_ARGUMENT', 'give a provider id and a path starting with "/"');
    // ws is loaded by the clients that open a WebSocket, not by every invoke.
    const { default: WebSocketClient } = await import('ws');
    const target = `/gw/${provider}${pathAndQuery}`;
    const url = options.socketPath ? `ws+unix://${options.socketPath}:${target}` : `${base.replace(/^http/, 'ws')}${target}`;
    return new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocketClient(url, opts.protocols ?? [], { headers: { ...opts.headers, authorization: `Bearer ${options.token}` }, perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(errorFromRefusal(Buffer.concat(chunks).toString('utf8'), res.headers['x-aivault-error'], `the upgrade was answered with HTTP ${res.statusCode}`)));
      });
      ws.once('error', () => reject(new AivaultError('DAEMON_UNAVAILABLE', `the aivault daemon at ${options.socketPath ?? options.url} does not answer`)));
    });
  };

  return {
    fetch: gatewayFetch,
    webSocket,
    async runFlow(flow, input = {}) {
      const body = input.body === undefined ? {} : typeof input.body === 'string' ? { body: input.body } : { bodyBase64: Buffer.from(input.body).toString('base64') };
      const res = await call('/v1/flows/run', { method: 'POST', body: JSON.stringify({ flow, ...body, ...(input.contentType ? { contentType: input.contentType } : {}) }) });
      if (res.headers['x-aivault-error'] !== undefined) throw await denial(res);
      return JSON.parse(await bodyText(res)) as FlowResult;
    },
    async invoke(req) {
      const { body, ...rest } = req;
      const payload = {
        ...rest,
        ...(typeof body === 'string' ? { body } : body !== undefined ? { bodyBase64: Buffer.from(body).toString('base64') } : {}),
      };
      // `TE: trailers`: an answer that fails after its head went out ends with the failure's
      // code in a trailer, instead of a cut connection with no reason.
      const res = await call('/v1/invoke', { method: 'POST', body: JSON.stringify(payload), headers: [['te', 'trailers']] });
      if (res.headers['x-aivault-error'] !== undefined) throw await denial(res);
      const answer = checkedBody(res);
      const text = async () => Buffer.concat(await answer.toArray()).toString('utf8');
      return { status: res.statusCode!, headers: res.headers, body: answer, text, json: async <T>() => JSON.parse(await text()) as T };
    },
    capabilities,
    async close() {
      keepAlive.destroy();
      await dispatcher?.close();
    },
  };
}
