// The owner side of the daemon: owner operations signed with an owner's Ed25519 key.

import { createPrivateKey, type KeyObject } from 'node:crypto';
import { Agent, request } from 'undici';
import { AivaultError } from '../errors.ts';
import { errorFromRefusal } from '../problem.ts';
import { signRequest } from '../policy/request-signature.ts';

export interface OwnerClientOptions {
  socketPath?: string;
  url?: string;
  ownerId: string;
  privateKey: string | KeyObject;
}

export interface OwnerClient {
  /** Runs an owner operation (`secrets.create`, `agent.create`, `grant.create`, `owner.add`…). */
  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

export function createOwnerClient(options: OwnerClientOptions): OwnerClient {
  if (!options.socketPath && !options.url) throw new AivaultError('INVALID_ARGUMENT', 'give socketPath or url');
  const dispatcher = new Agent(options.socketPath ? { connect: { socketPath: options.socketPath } } : {});
  const base = options.socketPath ? 'http://aivault' : options.url!.replace(/\/$/, '');
  const key = typeof options.privateKey === 'string' ? createPrivateKey(options.privateKey) : options.privateKey;
  return {
    async call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
      const body = JSON.stringify({ op, args });
      const target = '/v1/owner/rpc';
      const headers = signRequest({ method: 'POST', target, headers: [['content-type', 'application/json']], body: Buffer.from(body) }, options.ownerId, key);
      let res;
      try {
        res = await request(`${base}${target}`, { method: 'POST', headers: Object.fromEntries(headers), body, dispatcher });
      } catch {
        throw new AivaultError('DAEMON_UNAVAILABLE', 'the aivault daemon does not answer');
      }
      const answer = await res.body.text();
      if (res.headers['x-aivault-error'] !== undefined || res.statusCode >= 400) throw errorFromRefusal(answer, res.headers['x-aivault-error'], `the daemon answered HTTP ${res.statusCode}`);
      return (JSON.parse(answer) as { result: T }).result;
    },
    close: () => dispatcher.close(),
  };
}
