// When an agent credential (or an owner key) and a daemon address are in the environment, the
// CLI acts as that agent (or owner) through the daemon instead of opening the vault itself.
// Each route is imported when taken: an agent's call never loads the vault, the services or
// the owner operations' schemas, and an owner's never loads the agent client.

import { readFileSync } from 'node:fs';
import { AivaultError } from '../errors.ts';
import type { AgentClient } from '../sdk/agent-client.ts';
import type { OwnerClient } from '../sdk/owner-client.ts';
import type { OwnerArgs, OwnerOp, OwnerResult } from '../owner/operations.ts';
import { vaultDir, type GlobalOptions } from './context.ts';
import { findDaemon } from './daemon-record.ts';

/**
 * The daemon client for AIVAULT_AGENT_TOKEN, when it is set: at AIVAULT_SOCKET or AIVAULT_URL,
 * else at the daemon the vault directory records. A token with no daemon to take it is an
 * error, not a reason to act as the owner in this process.
 */
export async function agentClientFromEnv(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Promise<AgentClient | undefined> {
  const token = env.AIVAULT_AGENT_TOKEN;
  if (!token) return undefined;
  const socketPath = env.AIVAULT_SOCKET || (env.AIVAULT_URL ? undefined : (await findDaemon(vaultDir(opts)))?.socket);
  const url = env.AIVAULT_URL;
  if (!socketPath && !url) throw new AivaultError('DAEMON_UNAVAILABLE', `AIVAULT_AGENT_TOKEN is set but no daemon was found: set AIVAULT_SOCKET or AIVAULT_URL, or start \`aivault serve\` for ${vaultDir(opts)}`);
  const { createAgentClient } = await import('../sdk/agent-client.ts');
  return createAgentClient({ token, ...(socketPath ? { socketPath } : { url: url! }) });
}

/**
 * With AIVAULT_OWNER_ID, AIVAULT_OWNER_KEY (the owner's private key file) and a daemon
 * address, owner commands are sent to the daemon signed with that key, instead of
 * opening the vault (which needs the vault key) in this process.
 */
export async function ownerClientFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<OwnerClient | undefined> {
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
  const { createOwnerClient } = await import('../sdk/owner-client.ts');
  return createOwnerClient({ ownerId, privateKey, ...(socketPath ? { socketPath } : { url: url! }) });
}

/**
 * Runs an owner operation: signed through the daemon when an owner key and address are
 * configured, otherwise in this process over the vault it opens. Either way the same table
 * entry runs and the same JSON value comes back, so a command need not know which.
 */
export async function ownerCall<K extends OwnerOp>(opts: GlobalOptions, op: K, args: OwnerArgs<K>): Promise<OwnerResult<K>> {
  const remote = await ownerClientFromEnv();
  if (remote) {
    try {
      return await remote.call<OwnerResult<K>>(op, args as Record<string, unknown>);
    } finally {
      await remote.close();
    }
  }
  const [{ ownerOperation, runOwnerOperation }, { withServices }] = await Promise.all([import('../owner/operations.ts'), import('./broker-context.ts')]);
  const how = ownerOperation(op).opensToVerify ? { toVerify: true } : {};
  const result = await withServices(opts, (services) => runOwnerOperation(services, op, args), how);
  // The value the wire would carry: what a command prints cannot depend on the route.
  return JSON.parse(JSON.stringify(result)) as OwnerResult<K>;
}
