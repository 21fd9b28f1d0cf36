// When an agent credential and a daemon address are in the environment, the CLI acts as
// that agent through the daemon instead of opening the vault itself.

import { readFileSync } from 'node:fs';
import { AivaultError } from '../errors.ts';
import { createAgentClient, type AgentClient } from '../sdk/agent-client.ts';
import { createOwnerClient, type OwnerClient } from '../sdk/owner-client.ts';

export function agentClientFromEnv(env: NodeJS.ProcessEnv = process.env): AgentClient | undefined {
  const token = env.AIVAULT_AGENT_TOKEN;
  const socketPath = env.AIVAULT_SOCKET;
  const url = env.AIVAULT_URL;
  if (!token || (!socketPath && !url)) return undefined;
  return createAgentClient({ token, ...(socketPath ? { socketPath } : { url: url! }) });
}

/**
 * With AIVAULT_OWNER_ID, AIVAULT_OWNER_KEY (the owner's private key file) and a daemon
 * address, owner commands are sent to the daemon signed with that key, instead of
 * opening the vault (which needs the vault key) in this process.
 */
export function ownerClientFromEnv(env: NodeJS.ProcessEnv = process.env): OwnerClient | undefined {
  const ownerId = env.AIVAULT_OWNER_ID;
  const keyFile = env.AIVAULT_OWNER_KEY;
  const socketPath = env.AIVAULT_SOCKET;
  const url = env.AIVAULT_URL;
  if (!ownerId || !keyFile || (!socketPath && !url)) return undefined;
  let privateKey: string;
  try {
    privateKey = readFileSync(keyFile, 'utf8');
  } catch {
    throw new AivaultError('INVALID_ARGUMENT', 'AIVAULT_OWNER_KEY cannot be read');
  }
  return createOwnerClient({ ownerId, privateKey, ...(socketPath ? { socketPath } : { url: url! }) });
}

/** Runs `op` on the daemon as the owner when configured, else `local` in this process. */
export async function asOwner<T>(op: string, args: Record<string, unknown>, local: () => Promise<T>): Promise<T> {
  const remote = ownerClientFromEnv();
  if (!remote) return local();
  try {
    return await remote.call<T>(op, args);
  } finally {
    await remote.close();
  }
}
