// What the benchmarks share: servers in processes of their own (so they do not share an
// event loop with the client being measured), and percentiles.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** Runs a bench server script (bench/NAME) that prints its port on stdout; resolves with it. */
export async function startServerProcess(script: string): Promise<{ host: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${script}`, import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  return { host: `127.0.0.1:${port}`, child };
}

/** `aivault serve` on the vault in `dir` (env master key), on its own socket and a loopback port. */
export async function startServe(dir: string, masterKey: string, name: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--socket', join(dir, `${name}.sock`), '--listen', '127.0.0.1:0', '--audit-durability', 'crash-safe'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AIVAULT_DIR: dir, AIVAULT_MASTER_KEY: masterKey },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const first = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(String(d)));
    child.once('exit', (code) => reject(new Error(`aivault serve exited ${code}`)));
  });
  return { url: (JSON.parse(first) as { listening: { url: string } }).listening.url, child };
}

/** The p-th percentile (nearest rank, 0-100) of some measurements. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
