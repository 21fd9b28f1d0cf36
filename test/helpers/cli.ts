// Runs the real CLI in a child process (process.execPath: the pinned Node 24).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/**
 * What a child process of a test starts with: PATH and HOME, and the compile cache `npm test`
 * turns on (scripts/test.ts), so each CLI run skips parsing what an earlier run parsed; nothing
 * else of this process's environment.
 */
export const CHILD_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...(process.env.NODE_COMPILE_CACHE ? { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE } : {}) };

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  cwd?: string;
  /** Kill the command after this long (a hang then fails the test instead of stalling it). */
  timeoutMs?: number;
}

export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...CHILD_ENV, ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.timeoutMs ? { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(options.input ?? '');
  });
}

export interface TempVault {
  dir: string;
  env: NodeJS.ProcessEnv;
  cli(args: readonly string[], options?: CliOptions): Promise<CliResult>;
  cleanup(): void;
}

/**
 * The vault's CLI, keeping every stdout and stderr it printed, so a test can check them
 * all for canaries at the end. `vault` is read at call time (tests assign it in before()).
 */
export function recorder(vault: () => TempVault): { outputs: string[]; run(args: readonly string[], options?: CliOptions): Promise<CliResult> } {
  const outputs: string[] = [];
  return {
    outputs,
    run: async (args, options = {}) => {
      const r = await vault().cli(args, options);
      outputs.push(r.stdout, r.stderr);
      return r;
    },
  };
}

/** A fresh vault directory under the OS temp dir, initialised with a key file unless told otherwise. */
export async function tempVault(initArgs: readonly string[] = ['--key-provider', 'keyfile'], env: NodeJS.ProcessEnv = {}): Promise<TempVault> {
  const root = mkdtempSync(join(tmpdir(), 'aivault-test-'));
  const dir = join(root, 'vault');
  const vaultEnv = { AIVAULT_DIR: dir, ...env };
  const cli = (args: readonly string[], options: CliOptions = {}) => runCli(args, { ...options, env: { ...vaultEnv, ...options.env } });
  const init = await cli(['init', ...initArgs]);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  return { dir, env: vaultEnv, cli, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A recognisable, unique value that must never show up anywhere but the encrypted store. */
export function canary(label = 'CANARY'): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}

/** Every file under dir, recursively, as raw bytes. */
export function readAllFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { recursive: true })) {
    const path = join(dir, String(entry));
    if (statSync(path).isFile()) files.set(path, readFileSync(path));
  }
  return files;
}

/** The forms a value may leak in: raw, base64, base64url, hex, URL-encoded, UTF-16. */
export function encodings(value: string): string[] {
  const buf = Buffer.from(value, 'utf8');
  return [value, buf.toString('base64').replace(/=+$/, ''), buf.toString('base64url'), buf.toString('hex'), encodeURIComponent(value), Buffer.from(value, 'utf16le').toString('latin1')];
}

export function assertNoLeak(haystack: string | Buffer, value: string, where: string): void {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  for (const form of encodings(value)) {
    if (text.includes(form)) throw new Error(`secret value leaked into ${where} (form: ${form === value ? 'raw' : 'encoded'})`);
  }
}
