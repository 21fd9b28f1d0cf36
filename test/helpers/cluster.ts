// Several `aivault serve` replicas, each its own process, on one PostgreSQL vault.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { tempVault, type TempVault } from './cli.ts';
import { startDaemon, type RunningDaemon } from './daemon.ts';

export interface Cluster {
  vault: TempVault;
  replicas: RunningDaemon[];
  /** The owner's CLI, a process of its own on the same database. */
  owner(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** A fresh PostgreSQL vault (env master key), and `count` replicas serving it on loopback. */
export async function startCluster(databaseUrl: string, count: number, serveArgs: string[] = []): Promise<Cluster> {
  const env = { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') };
  const vault = await tempVault(['--key-provider', 'env', '--storage', databaseUrl, '--no-guide'], env);
  const owner = async (args: string[]) => {
    const r = await vault.cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const cluster: Cluster = {
    vault,
    replicas: [],
    owner,
    stop: async () => {
      await Promise.all(cluster.replicas.map((r) => r.stop()));
      vault.cleanup();
    },
  };
  cluster.replicas = await Promise.all(Array.from({ length: count }, (_, i) => startDaemon(vault, ['--socket', join(vault.dir, `r${i}.sock`), '--listen', '127.0.0.1:0', ...serveArgs])));
  return cluster;
}

export interface Answer {
  status: number;
  error: string | undefined;
  text: string;
}

const dispatchers = new Map<string, Agent>();

/** POSTs JSON to one replica's TCP address. */
export async function post(replica: RunningDaemon, path: string, headers: Record<string, string>, body: string): Promise<Answer> {
  let dispatcher = dispatchers.get(replica.url!);
  if (!dispatcher) dispatchers.set(replica.url!, (dispatcher = new Agent({ connections: 32 })));
  const r = await request(`${replica.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, dispatcher });
  const error = r.headers['x-aivault-error'];
  return { status: r.statusCode, error: typeof error === 'string' ? error : undefined, text: await r.body.text() };
}
