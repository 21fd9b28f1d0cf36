// The agent side: talks to `aivault serve` over its Unix socket or loopback URL with an
// agent token. It never sees a secret: only capability ids and scrubbed responses.

import { createPrivateKey, type KeyObject } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import { signRequest } from '../policy/request-signature.ts';
import { AivaultError, ERROR_CODES, type ErrorCode } from '../errors.ts';

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
}

export interface AgentInvokeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
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
  close(): Promise<void>;
}

async function denial(res: Dispatcher.ResponseData): Promise<AivaultError> {
  const code = String(res.headers['x-aivault-error']);
  let message = 'refused by aivault';
  try {
    message = ((await res.body.json()) as { error: { message: string } }).error.message;
  } catch {
    // keep the generic message
  }
  return new AivaultError((code in ERROR_CODES ? code : 'INTERNAL_ERROR') as ErrorCode, message);
}

export function createAgentClient(options: AgentClientOptions): AgentClient {
  if (!options.socketPath && !options.url) throw new AivaultError('INVALID_ARGUMENT', 'give socketPath or url');
  if (!options.token && !(options.agentId && options.privateKey)) throw new AivaultError('INVALID_ARGUMENT', 'give token, or agentId and privateKey');
  const dispatcher = new Agent(options.socketPath ? { connect: { socketPath: options.socketPath } } : {});
  const base = options.socketPath ? 'http://aivault' : options.url!.replace(/\/$/, '');
  const privateKey = options.privateKey === undefined ? undefined : typeof options.privateKey === 'string' ? createPrivateKey(options.privateKey) : options.privateKey;

  const call = async (path: string, init: { method: 'GET' | 'POST'; body?: string }) => {
    let headers: Array<[string, string]> = init.body ? [['content-type', 'application/json']] : [];
    if (privateKey) {
      headers = signRequest({ method: init.method, target: path, headers, body: init.body === undefined ? undefined : Buffer.from(init.body) }, options.agentId!, privateKey);
    } else {
      headers.push(['authorization', `Bearer ${options.token}`]);
    }
    try {
      return await request(`${base}${path}`, { method: init.method, ...(init.body !== undefined ? { body: init.body } : {}), headers: Object.fromEntries(headers), dispatcher });
    } catch {
      throw new AivaultError('DAEMON_UNAVAILABLE', `the aivault daemon at ${options.socketPath ?? options.url} does not answer`);
    }
  };

  return {
    async invoke(req) {
      const { body, ...rest } = req;
      const payload = {
        ...rest,
        ...(typeof body === 'string' ? { body } : body !== undefined ? { bodyBase64: Buffer.from(body).toString('base64') } : {}),
      };
      const res = await call('/v1/invoke', { method: 'POST', body: JSON.stringify(payload) });
      if (res.headers['x-aivault-error'] !== undefined) throw await denial(res);
      return {
        status: res.statusCode,
        headers: res.headers,
        body: res.body,
        text: () => res.body.text(),
        json: <T>() => res.body.json() as Promise<T>,
      };
    },
    async capabilities() {
      const res = await call('/v1/capabilities', { method: 'GET' });
      if (res.headers['x-aivault-error'] !== undefined) throw await denial(res);
      return (await res.body.json()) as CapabilityInfo[];
    },
    close: () => dispatcher.close(),
  };
}
