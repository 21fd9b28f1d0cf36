// What the benchmarks share: servers in processes of their own (so they do not share an
// event loop with the client being measured), and percentiles.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
let built = false;

/**
 * The installed program, dist/cli/main.js, built once per bench run (`tsc -p
 * tsconfig.build.json`, what `npm run build` runs after the registry). A daemon started
 * from src/*.ts also runs Node's TypeScript stripper, whose WebAssembly alone holds about
 * 17 MiB resident that no installed daemon pays.
 */
export function builtCli(): string {
  if (!built) execFileSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(repo, 'tsconfig.build.json')], { stdio: 'inherit' });
  built = true;
  return join(repo, 'dist/cli/main.js');
}

/** Runs a bench server script (bench/NAME) that prints its port on stdout; resolves with it. */
export async function startServerProcess(script: string, env: Record<string, string> = {}): Promise<{ host: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${script}`, import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  return { host: `127.0.0.1:${port}`, child };
}

export interface ServeOptions {
  durability?: 'full' | 'crash-safe';
  /** Node flags for the daemon's process, e.g. --trace-gc. */
  nodeFlags?: string[];
  /** More `serve` flags. */
  args?: string[];
  /** Every other line the daemon prints on stdout (--trace-gc writes there). */
  onLine?: (line: string) => void;
}

/** `aivault serve`, as installed (builtCli), on the vault in `dir` (env master key), on its own socket and a loopback port. */
export async function startServe(dir: string, masterKey: string, name: string, o: ServeOptions = {}): Promise<{ url: string; child: ChildProcess }> {
  const serveArgs = ['serve', '--socket', join(dir, `${name}.sock`), '--listen', '127.0.0.1:0', '--audit-durability', o.durability ?? 'crash-safe', ...(o.args ?? [])];
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), builtCli(), ...serveArgs], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AIVAULT_DIR: dir, AIVAULT_MASTER_KEY: masterKey },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  // Read every line, so a chatty daemon never blocks on a full pipe.
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('{"listening"')) resolve((JSON.parse(line) as { listening: { url: string } }).listening.url);
      else o.onLine?.(line);
    });
    child.once('exit', (code) => reject(new Error(`aivault serve exited ${code}`)));
  });
  return { url, child };
}

/** The p-th percentile (nearest rank, 0-100) of some measurements. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
