// What anyone who can connect may cost the daemon. A request is authenticated from its
// headers before any of its body is read (a signed one, whose signature covers the body,
// names a registered signer and a current timestamp first); until then it holds one of a
// few unauthenticated slots, and afterwards one of its agent's in-flight slots. Every phase
// of a connection has a deadline: headers, body, and the idle time between requests.

import type { IncomingMessage } from 'node:http';
import { AivaultError, RetryLaterError } from '../errors.ts';

export interface ServerLimits {
  /** Time for a request's headers to arrive (a connection that sends nothing is cut too). */
  headersTimeoutMs: number;
  /** Time for a request's whole body to arrive, once its headers have. */
  bodyTimeoutMs: number;
  /** How long a kept-alive connection may wait for its next request. */
  idleTimeoutMs: number;
  /** Open connections per listening socket; more are refused at accept. */
  maxConnections: number;
  /** Requests being authenticated at once (a signed one's body is read in this phase). */
  maxUnauthenticated: number;
  /** One agent's requests and WebSocket sessions open at once on this daemon. */
  maxInFlightPerAgent: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  idleTimeoutMs: 5_000,
  maxConnections: 1024,
  maxUnauthenticated: 16,
  maxInFlightPerAgent: 32,
};

/** The most bytes a request body may hold on the agent routes. */
export const MAX_API_BODY = 16 * 1024 * 1024;
/** An owner call is small (a secret value is at most 64 KiB, escaped in JSON). */
export const MAX_OWNER_BODY = 1024 * 1024;

/** Counts what is admitted: unauthenticated requests, and each agent's open requests. */
export class Admission {
  readonly limits: ServerLimits;
  #unauthenticated = 0;
  readonly #perAgent = new Map<string, number>();

  constructor(limits: ServerLimits) {
    this.limits = limits;
  }

  /** A slot for a request still being authenticated; `release` exactly once. */
  unauthenticated(): () => void {
    if (this.#unauthenticated >= this.limits.maxUnauthenticated) {
      throw new RetryLaterError('DAEMON_BUSY', 'the daemon is authenticating as many requests as it takes at once; retry shortly', 1);
    }
    this.#unauthenticated += 1;
    return once(() => (this.#unauthenticated -= 1));
  }

  /** A slot among `agentId`'s open requests; `release` exactly once. */
  agent(agentId: string): () => void {
    const open = this.#perAgent.get(agentId) ?? 0;
    if (open >= this.limits.maxInFlightPerAgent) {
      throw new RetryLaterError('TOO_MANY_IN_FLIGHT', `this agent already has ${open} requests open on this daemon; retry when one finishes`, 1);
    }
    this.#perAgent.set(agentId, open + 1);
    return once(() => {
      const left = (this.#perAgent.get(agentId) ?? 1) - 1;
      if (left === 0) this.#perAgent.delete(agentId);
      else this.#perAgent.set(agentId, left);
    });
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/**
 * The request body (undefined when empty): at most `limit` bytes, whole within `timeoutMs`
 * of `since` (when its headers arrived). On refusal reading stops where it is: the caller
 * answers and closes the connection rather than drain what is left.
 */
export function readBody(req: IncomingMessage, limit: number, since: number, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onError);
      if (err) {
        req.pause();
        reject(err);
      } else {
        resolve(size > 0 ? Buffer.concat(chunks) : undefined);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle(new AivaultError('REQUEST_TOO_LARGE', `the request body is larger than ${limit} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = () => settle(undefined);
    // Once 'end' has settled it, a 'close' changes nothing; before, the client went away.
    const onError = () => settle(new AivaultError('INVALID_ARGUMENT', 'the request body ended early'));
    const timeout = new AivaultError('REQUEST_TIMEOUT', `the request body did not arrive within ${timeoutMs / 1000} s`);
    const timer = setTimeout(() => settle(timeout), Math.max(0, since + timeoutMs - Date.now()));
    if (req.complete && req.readableEnded) return settle(undefined);
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onError);
  });
}
