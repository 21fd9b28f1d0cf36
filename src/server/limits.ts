// What anyone who can connect may cost the daemon. A request is authenticated from its
// headers before any of its body is read. A token's request needs nothing more; a signed
// one, whose signature covers the body, names a registered active signer and a current
// timestamp first, then holds one of a few slots for unverified bodies (and at most
// MAX_UNVERIFIED_PER_SIGNER of them per signer id) while its body arrives. Afterwards a
// request holds one of its agent's in-flight slots. The bodies buffered at once share one
// daemon-wide byte budget. Every phase of a connection has a deadline: headers, body, and
// the idle time between requests.

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
  /** Signed requests whose body is being read before their signature can be checked. */
  maxUnauthenticated: number;
  /** Request-body bytes buffered at once, daemon-wide (announced by Content-Length, or as they arrive). */
  maxBufferedBodyBytes: number;
  /** One agent's requests and WebSocket sessions open at once on this daemon. */
  maxInFlightPerAgent: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  idleTimeoutMs: 5_000,
  maxConnections: 1024,
  maxUnauthenticated: 16,
  maxBufferedBodyBytes: 64 * 1024 * 1024,
  maxInFlightPerAgent: 32,
};

/** The most bytes a request body may hold on the agent routes. */
export const MAX_API_BODY = 16 * 1024 * 1024;
/** An owner call is small (a secret value is at most 64 KiB, escaped in JSON). */
export const MAX_OWNER_BODY = 1024 * 1024;

/**
 * Unverified bodies one signer id may have in flight: anyone may name an id (they are not
 * secret), so a flood naming one id takes only these slots, never all of them.
 */
export const MAX_UNVERIFIED_PER_SIGNER = 2;

/** A request's share of the body budget: `take` as bytes are announced or arrive, `release` once. */
export interface BodyHold {
  take(bytes: number): void;
  release(): void;
}

/** Counts what is admitted: unverified bodies (in all, and per signer), each agent's open requests, buffered body bytes. */
export class Admission {
  readonly limits: ServerLimits;
  #unverified = 0;
  #buffered = 0;
  readonly #perSigner = new Map<string, number>();
  readonly #perAgent = new Map<string, number>();

  constructor(limits: ServerLimits) {
    this.limits = limits;
  }

  /** A slot for a signed request from `signer` whose body is read before it is verified; `release` exactly once. */
  unverified(signer: string): () => void {
    if (this.#unverified >= this.limits.maxUnauthenticated || (this.#perSigner.get(signer) ?? 0) >= MAX_UNVERIFIED_PER_SIGNER) {
      throw new RetryLaterError('DAEMON_BUSY', 'the daemon is reading as many unverified signed requests as it takes at once (in all, or for this signer); retry shortly', 1);
    }
    this.#unverified += 1;
    const release = count(this.#perSigner, signer);
    return once(() => {
      this.#unverified -= 1;
      release();
    });
  }

  /** A slot among `agentId`'s open requests; `release` exactly once. */
  agent(agentId: string): () => void {
    const open = this.#perAgent.get(agentId) ?? 0;
    if (open >= this.limits.maxInFlightPerAgent) {
      throw new RetryLaterError('TOO_MANY_IN_FLIGHT', `this agent already has ${open} requests open on this daemon; retry when one finishes`, 1);
    }
    return once(count(this.#perAgent, agentId));
  }

  /** A new request's share of the daemon-wide body budget. */
  bodyHold(): BodyHold {
    let held = 0;
    return {
      take: (bytes) => {
        if (this.#buffered + bytes > this.limits.maxBufferedBodyBytes) {
          throw new RetryLaterError('DAEMON_BUSY', 'the daemon is holding as many request-body bytes as it takes at once; retry shortly', 1);
        }
        this.#buffered += bytes;
        held += bytes;
      },
      release: () => {
        this.#buffered -= held;
        held = 0;
      },
    };
  }
}

/** Counts one more under `key`; the function returned counts it back (the key goes at zero). */
function count(map: Map<string, number>, key: string): () => void {
  map.set(key, (map.get(key) ?? 0) + 1);
  return () => {
    const left = (map.get(key) ?? 1) - 1;
    if (left === 0) map.delete(key);
    else map.set(key, left);
  };
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
 * of `since` (when its headers arrived), its bytes taken from `hold` before they are
 * buffered (all the announced Content-Length at once, a chunked body's as it arrives). A
 * refusal from the headers alone is thrown at once, before the caller asks for the body. On
 * refusal reading stops where it is: the caller answers and closes the connection rather
 * than drain what is left.
 */
export function readBody(req: IncomingMessage, limit: number, since: number, timeoutMs: number, hold: BodyHold): Promise<Buffer | undefined> {
  const announced = Number(req.headers['content-length'] ?? NaN);
  if (announced > limit) throw new AivaultError('REQUEST_TOO_LARGE', `the request body is larger than ${limit} bytes`);
  let taken = 0;
  if (announced > 0) hold.take((taken = announced));
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
      if (size > limit) return settle(new AivaultError('REQUEST_TOO_LARGE', `the request body is larger than ${limit} bytes`));
      try {
        if (size > taken) hold.take(size - taken);
      } catch (err) {
        return settle(err as Error);
      }
      taken = Math.max(taken, size);
      chunks.push(chunk);
    };
    const onEnd = () => settle(undefined);
    // Once 'end' has settled it, a 'close' changes nothing; before, the client went away.
    const onError = () => settle(new AivaultError('INVALID_ARGUMENT', 'the request body ended early'));
    const timer = setTimeout(() => settle(new AivaultError('REQUEST_TIMEOUT', `the request body did not arrive within ${timeoutMs / 1000} s`)), Math.max(0, since + timeoutMs - Date.now()));
    if (req.complete && req.readableEnded) return settle(undefined);
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onError);
  });
}
