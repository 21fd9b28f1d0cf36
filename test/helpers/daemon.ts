// Starts `aivault serve` in its own process for a test vault.
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, type TempVault, CHILD_ENV } from './cli.ts';

export interface RunningDaemon {
  process: ChildProcess;
  socket?: string;
  url?: string;
  log(): string;
  stop(): Promise<number | null>;
}

/** `nodeFlags`: given to node before the CLI. */
export async function startDaemon(v: TempVault, args: string[], nodeFlags: string[] = []): Promise<RunningDaemon> {
  const child = spawn(process.execPath, [...nodeFlags, CLI, 'serve', ...args], { env: { ...CHILD_ENV, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d));
  const first = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(String(d)));
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${log}`)));
  });
  const { listening } = JSON.parse(first) as { listening: { socket?: string; url?: string } };
  return {
    process: child,
    ...listening,
    log: () => log,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}
