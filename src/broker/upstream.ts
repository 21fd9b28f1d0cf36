// The one way bytes leave aivault: undici's `request`, through an Agent whose connector
// resolves names with the checked lookup. Redirects are never followed (undici's
// `request` does not follow them), and undici errors are mapped to our codes with our
// own messages: theirs can quote the URL, and the URL can hold a secret.

import { isIP } from 'node:net';
import type { Agent, buildConnector, Dispatcher } from 'undici';
import { AivaultError, isAivaultError } from '../errors.ts';
import { lazy } from '../lazy.ts';
import { assertAddressAllowed, checkedLookup } from '../policy/dns.ts';
import { portOf } from '../policy/hosts.ts';

const undici = lazy<typeof import('undici')>('undici');

/**
 * undici's connector, with every address checked under the credential's policy and the
 * port known (so aivault's own listeners are refused): names through the checked lookup,
 * IP literals (which skip any lookup) here. One connector per port, for TLS session reuse.
 */
function checkedConnector(options: { allowPrivateNetwork: boolean; timeout: number; tls?: ClientTlsOptions }): buildConnector.connector {
  const byPort = new Map<number, buildConnector.connector>();
  return (opts, callback) => {
    const port = portOf(opts.port, opts.protocol);
    const host = opts.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host)) {
      try {
        assertAddressAllowed(host, { allowPrivateNetwork: options.allowPrivateNetwork, port });
      } catch (err) {
        callback(err as Error, null);
        return;
      }
    }
    let connect = byPort.get(port);
    if (!connect) {
      connect = undici().buildConnector({ timeout: options.timeout, ...options.tls, lookup: checkedLookup({ allowPrivateNetwork: options.allowPrivateNetwork, port }) } as buildConnector.BuildOptions);
      byPort.set(port, connect);
    }
    return connect(opts, callback);
  };
}

export interface ClientTlsOptions {
  cert: string;
  key: string;
  ca?: string;
  passphrase?: string;
}

export interface UpstreamRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  allowPrivateNetwork: boolean;
  connectTimeoutMs: number;
  timeoutMs: number;
  /** A dedicated pool (mTLS credentials); otherwise the shared one for the policy. */
  dispatcher?: Dispatcher;
}

export class UpstreamClient {
  readonly #agents = new Map<string, Agent>();

  /** The shared pool for a policy (public). */
  agent(allowPrivateNetwork: boolean, connectTimeoutMs: number): Agent {
    return this.#agent(allowPrivateNetwork, connectTimeoutMs);
  }

  #agent(allowPrivateNetwork: boolean, connectTimeoutMs: number): Agent {
    const key = `${allowPrivateNetwork}:${connectTimeoutMs}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = new (undici().Agent)({
        connect: checkedConnector({ allowPrivateNetwork, timeout: connectTimeoutMs }),
        keepAliveTimeout: 10_000,
        connections: 64,
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  async send(req: UpstreamRequest, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    try {
      return await undici().request(req.url, {
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers,
        body: req.body ?? null,
        dispatcher: req.dispatcher ?? this.#agent(req.allowPrivateNetwork, req.connectTimeoutMs),
        signal,
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
      });
    } catch (err) {
      throw upstreamError(err, signal, { clientCertificate: req.dispatcher !== undefined });
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((a) => a.close()));
    this.#agents.clear();
  }
}

/** A connection pool that presents a client certificate (one per mTLS credential). */
export function clientCertAgent(tls: ClientTlsOptions, allowPrivateNetwork: boolean, connectTimeoutMs: number): Agent {
  return new (undici().Agent)({
    connect: checkedConnector({ allowPrivateNetwork, timeout: connectTimeoutMs, tls }),
    keepAliveTimeout: 10_000,
    connections: 16,
  });
}

function codeChain(err: unknown): string[] {
  const codes: string[] = [];
  for (let e = err as { code?: unknown; cause?: unknown; name?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string') codes.push(e.code);
    if (typeof e.name === 'string') codes.push(e.name);
  }
  return codes;
}

/** Maps a failure of the upstream exchange to a stable code. */
export function upstreamError(err: unknown, signal?: AbortSignal, context: { clientCertificate?: boolean } = {}): AivaultError {
  for (let e = err as { cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (isAivaultError(e)) return e;
  }
  if (signal?.aborted && isAivaultError(signal.reason)) return signal.reason;
  const codes = codeChain(err);
  const has = (...c: string[]) => codes.some((x) => c.includes(x));
  if (has('UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'TimeoutError', 'ETIMEDOUT') || signal?.aborted) {
    return new AivaultError('UPSTREAM_TIMEOUT', 'the upstream did not answer in time');
  }
  if (codes.some((c) => c.startsWith('ERR_TLS') || c.startsWith('ERR_SSL') || c.startsWith('ERR_OSSL') || c.includes('CERT') || c === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || c === 'EPROTO')) {
    return new AivaultError('UPSTREAM_TLS_ERROR', 'the TLS handshake with the upstream failed (certificate not trusted, or refused by the server)');
  }
  // Under TLS 1.3 a server refuses a client certificate after the handshake, by closing.
  if (context.clientCertificate && has('UND_ERR_SOCKET', 'ECONNRESET') && !has('ECONNREFUSED')) {
    return new AivaultError('UPSTREAM_TLS_ERROR', 'the upstream closed the connection before answering: with a client certificate this means it refused the certificate');
  }
  if (has('ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'EPIPE')) {
    return new AivaultError('UPSTREAM_UNREACHABLE', 'the upstream could not be reached or closed the connection');
  }
  return new AivaultError('UPSTREAM_ERROR', 'the exchange with the upstream failed');
}
