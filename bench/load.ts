// The load generator of bench:gateway: wrk (C, one thread) where installed, pinned to its own
// CPU, so the client's own cost does not cap the fastest target; else an undici client in the
// bench process. Each run is a fixed time with a fixed number of connections, each sending
// its next request once its answer is in; any answer but 2xx fails the run.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { percentile } from './processes.ts';

export interface Target {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

/** Requests answered, per second, and latency percentiles in milliseconds. */
export interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
}

export interface LoadGenerator {
  name: string;
  /** `cpu`: where to run the load (wrk only; the in-process client stays where the bench is). */
  run(target: Target, connections: number, seconds: number, cpu?: number): Promise<LoadResult>;
  close(): Promise<void>;
}

const MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** wrk's `--latency` summary: requests, the 50% and 99% rows, and any errors. */
export function parseWrk(out: string): LoadResult {
  const time = (row: string) => {
    const m = new RegExp(`^\\s*${row}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`no ${row}% latency in wrk's output:\n${out}`);
    return Number(m[1]) * MS[m[2]!]!;
  };
  const errors = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(out);
  if (errors) throw new Error(`wrk: ${errors[0]}`);
  const requests = Number(/^\s*(\d+) requests in/m.exec(out)?.[1]);
  return { requests, rps: Number(/^Requests\/sec:\s+([\d.]+)/m.exec(out)?.[1]), p50: time('50'), p99: time('99') };
}

/** wrk (pinned with taskset to a run's `cpu`, when given), its request scripts written to `dir`. */
export function wrk(program: string, dir: string): LoadGenerator {
  let scripts = 0;
  return {
    name: 'wrk, 1 thread',
    async run(target, connections, seconds, cpu) {
      // A Lua script sets method, headers and body; JSON strings are valid Lua strings for ASCII.
      const script = join(dir, `target-${scripts++}.lua`);
      const lines = [`wrk.method = "${target.method}"`, ...Object.entries(target.headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)];
      if (target.body !== undefined) lines.push(`wrk.body = ${JSON.stringify(target.body)}`);
      writeFileSync(script, lines.join('\n') + '\n');
      const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, target.url];
      const child = cpu === undefined ? spawn(program, args) : spawn('taskset', ['--cpu-list', String(cpu), program, ...args]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (out += d));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      if (code !== 0) throw new Error(`wrk exited ${code}:\n${out}`);
      return parseWrk(out);
    },
    close: async () => {},
  };
}

/** An undici client in this process (pin the process to keep it off the servers' CPU). */
export function undiciClient(): LoadGenerator {
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 256 });
  return {
    name: 'undici, in the bench process',
    async run(target, connections, seconds) {
      const lat: number[] = [];
      const started = performance.now();
      const end = started + seconds * 1000;
      await Promise.all(Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          const res = await request(target.url, { method: target.method, headers: target.headers, ...(target.body !== undefined ? { body: target.body } : {}), dispatcher });
          await res.body.arrayBuffer();
          if (res.statusCode >= 300) throw new Error(`${target.url} answered ${res.statusCode}`);
          lat.push(performance.now() - t);
        }
      }));
      return { requests: lat.length, rps: lat.length / ((performance.now() - started) / 1000), p50: percentile(lat, 50), p99: percentile(lat, 99) };
    },
    close: () => dispatcher.close(),
  };
}
