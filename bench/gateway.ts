// `npm run bench:gateway`: a small GET to a loopback upstream straight, through nginx (a plain
// reverse proxy that adds the API key; Debian nginx-light, when installed), through Node's
// floor (the same job on node:http and undici, nothing of aivault's: bench/node-proxy.ts) and
// through an `aivault serve` daemon, built as installed (processes.ts builtCli): its SDK
// gateway and its `/v1/invoke`, with `full` and with `crash-safe` audit durability. Interleaved
// rounds of each target at BENCH_CONNECTIONS (32) and at one request at a time, so drift in
// machine load hits every target alike; prints medians of the rounds: throughput and its ratio
// to direct, p50/p99, each proxy's CPU per request (utime + stime from /proc, nginx's workers
// included) and its ratio to nginx's and to Node's floor, the p50 each adds at one request at a
// time, and the median fdatasync on the vaults' disk (what `full` waits for); then each
// daemon's resident memory at the start, after the warm-up and after each round, and its GC
// pauses during the rounds (the daemon runs with node's --trace-gc). Upstream and proxies are
// pinned to CPU 0, the load generator to CPU 1 (at one request at a time wrk joins them on CPU
// 0). Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (2), BENCH_CONNECTIONS, BENCH_CLIENT=undici,
// BENCH_PIN=0, BENCH_NODE_FLAGS; BENCH_COMPARE_FLAGS adds a `full` daemon run with those Node
// flags instead, in the same interleaved rounds (how a V8 setting is judged: two runs differ by
// more than it does).
// BENCH_ANSWER_BYTES makes the answer a model's long one of about that size (JSON text with
// escapes): with 1048576 (and fewer connections), CPU per request is CPU per MiB of body.
// BENCH_ANSWER_ENCODING (gzip, deflate or br) compresses it for clients that accept that, as real
// APIs do (the daemons decode it to scrub it; nginx and Node's floor send no Accept-Encoding);
// BENCH_ANSWER_CHUNKED=1 sends it with no Content-Length, in chunked framing.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentVault } from './agent-vault.ts';
import { undiciClient, wrk, type LoadResult, type Target } from './load.ts';
import { startNginx } from './nginx.ts';
import { cpuSeconds, findProgram, memoryMiB, pin, withChildren } from './proc.ts';
import { startServe, startServerProcess } from './processes.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const CLIENT = process.env.BENCH_CLIENT ?? (findProgram('wrk') ? 'wrk' : 'undici');
const PATH = '/v1/models';
/** More Node flags for the daemons (BENCH_NODE_FLAGS, space-separated), to compare a V8 setting. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const COMPARE_FLAGS = process.env.BENCH_COMPARE_FLAGS?.split(' ').filter(Boolean);
/** The upstream's answer size (bench/upstream-server.ts reads the same variable). */
const ANSWER_BYTES = Number(process.env.BENCH_ANSWER_BYTES ?? 0);
/** How the upstream sends it (bench/upstream-server.ts reads the same variables). */
const ENCODING = process.env.BENCH_ANSWER_ENCODING;
const CHUNKED = process.env.BENCH_ANSWER_CHUNKED === '1';

const root = mkdtempSync(join(tmpdir(), 'aivault-bench-gateway-'));
const key = `sk-bench-${randomBytes(16).toString('hex')}`;
const masterKey = randomBytes(32).toString('base64');
const children: ChildProcess[] = [];
const pinned = process.env.BENCH_PIN !== '0' && availableParallelism() >= 2 && findProgram('taskset') !== undefined;
const serversCpu = (pid: number) => pinned && pin(pid, 0);
const loadCpu = pinned ? 1 : undefined;
// One request at a time, the client shares the servers' CPU: it never competes with them, and
// a hop between CPUs costs a wake-up that can dwarf a proxy's work (300-400 µs on a busy VM).
const oneCpu = pinned ? 0 : undefined;

interface GcLog { measuring: boolean; mainIsolate?: string; pauses: Map<string, number[]> }

/**
 * --trace-gc lines: "[pid:0xISOLATE] … ms: Scavenge 8.3 (11.2) -> 7.4 (14.9) MB, pooled: 0 MB,
 * 9.17 / 0.00 ms …", the pause first. Worker threads (the audit thread) have isolates of their
 * own; the main thread's, which holds requests up, is the first to print.
 */
function traceGc(gc: GcLog) {
  return (line: string) => {
    const m = /^\[\d+:(0x[\da-f]+)\].*?\d+ ms: (Scavenge|Mark-Compact|Minor Mark-Sweep)\b.*? MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line);
    if (!m) return;
    gc.mainIsolate ??= m[1];
    if (!gc.measuring) return;
    const kind = `${m[2]}${m[1] === gc.mainIsolate ? '' : ' (worker threads)'}`;
    gc.pauses.set(kind, [...(gc.pauses.get(kind) ?? []), Number(m[3])]);
  };
}

interface Row { name: string; target: Target; cpuPids?: () => number[]; many: Array<LoadResult & { cpu?: number }>; one: LoadResult[] }
interface Daemon { name: string; pid: number; gc: GcLog; rss: number[] }

/**
 * What `full` durability waits for: µs per fdatasync of a 4 KiB append to a file beside the
 * vaults (the write-ahead logs' disk), measured between rounds of the same run.
 */
function fdatasyncTimes(dir: string, n: number): number[] {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'a');
  const page = Buffer.alloc(4096, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      writeSync(fd, page);
      const t = performance.now();
      fdatasyncSync(fd);
      times.push((performance.now() - t) * 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return times;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

try {
  if (pinned) pin(process.pid, 1);
  const upstream = await startServerProcess('upstream-server.ts', { BENCH_EXPECT_AUTHORIZATION: `Bearer ${key}` });
  children.push(upstream.child);
  serversCpu(upstream.child.pid!);
  const rows: Row[] = [{ name: 'direct', target: { url: `http://${upstream.host}${PATH}`, method: 'GET', headers: { authorization: `Bearer ${key}` } }, many: [], one: [] }];

  const nginxProgram = findProgram('nginx');
  if (nginxProgram) {
    const nginx = await startNginx(nginxProgram, join(root, 'nginx'), upstream.host, key);
    children.push(nginx.child);
    const pids = () => withChildren(nginx.child.pid!);
    for (const pid of pids()) serversCpu(pid);
    rows.push({ name: 'nginx', target: { url: `${nginx.url}${PATH}`, method: 'GET', headers: {} }, cpuPids: pids, many: [], one: [] });
  }

  // Node's own floor: the same job on node:http and undici with nothing of aivault's.
  const floor = await startServerProcess('node-proxy.ts', { BENCH_UPSTREAM: upstream.host, BENCH_AUTHORIZATION: `Bearer ${key}` });
  children.push(floor.child);
  serversCpu(floor.child.pid!);
  rows.push({ name: 'node floor', target: { url: `http://${floor.host}${PATH}`, method: 'GET', headers: {} }, cpuPids: () => [floor.child.pid!], many: [], one: [] });

  const daemons: Daemon[] = [];
  const variants = [
    { durability: 'full' as const, flags: NODE_FLAGS, label: 'full' },
    { durability: 'crash-safe' as const, flags: NODE_FLAGS, label: 'crash-safe' },
    ...(COMPARE_FLAGS ? [{ durability: 'full' as const, flags: COMPARE_FLAGS, label: `full [${COMPARE_FLAGS.join(' ')}]` }] : []),
  ];
  for (const [i, { durability, flags, label }] of variants.entries()) {
    const dir = join(root, `daemon-${i}`);
    const token = await agentVault({ dir, masterKey, host: upstream.host, key, capability: { name: 'models', method: 'GET', path: PATH } });
    const gc: GcLog = { measuring: false, pauses: new Map() };
    // Room for every connection's request at once (the default per-agent cap is 32).
    const serve = await startServe(dir, masterKey, 'd', { durability, nodeFlags: ['--trace-gc', ...flags], args: ['--max-in-flight-per-agent', String(Math.max(64, 2 * CONNECTIONS))], onLine: traceGc(gc) });
    children.push(serve.child);
    const pid = serve.child.pid!;
    serversCpu(pid);
    daemons.push({ name: label, pid, gc, rss: [] });
    const auth = { authorization: `Bearer ${token}` };
    rows.push({ name: `gateway, ${label}`, target: { url: `${serve.url}/gw/bench${PATH}`, method: 'GET', headers: auth }, cpuPids: () => [pid], many: [], one: [] });
    rows.push({ name: `invoke, ${label}`, target: { url: `${serve.url}/v1/invoke`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'bench/models', method: 'GET', path: PATH }) }, cpuPids: () => [pid], many: [], one: [] });
  }

  const syncs: number[] = [];
  const load = CLIENT === 'wrk' ? wrk(findProgram('wrk')!, root) : undiciClient();
  const rss = () => daemons.forEach((d) => d.rss.push(memoryMiB(d.pid, 'VmRSS')));
  try {
    rss();
    for (const r of rows) {
      await load.run(r.target, CONNECTIONS, 1, loadCpu);
      await load.run(r.target, 1, 1, oneCpu);
    }
    rss();
    for (const d of daemons) d.gc.measuring = true;
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of rows) {
        const before = r.cpuPids && cpuSeconds(r.cpuPids());
        const many = await load.run(r.target, CONNECTIONS, SECONDS, loadCpu);
        r.many.push({ ...many, ...(before !== undefined ? { cpu: (cpuSeconds(r.cpuPids!()) - before) / many.requests } : {}) });
        r.one.push(await load.run(r.target, 1, SECONDS, oneCpu));
      }
      rss();
      syncs.push(...fdatasyncTimes(root, 50));
    }
  } finally {
    await load.close();
  }

  type Run = LoadResult & { cpu?: number };
  const of = (r: Row, pick: (x: Run) => number | undefined, from: 'many' | 'one' = 'many') => {
    const values = r[from].map(pick).filter((v): v is number => v !== undefined);
    return values.length ? median(values) : undefined;
  };
  /** Each round's value against the base row's in the same round, so drift between rounds cancels; the median. */
  const paired = (r: Row, base: Row | undefined, pick: (x: Run) => number | undefined, combine: (a: number, b: number) => number, from: 'many' | 'one' = 'many') => {
    if (!base || r === base) return undefined;
    const values = r[from].map((x, i) => combine(pick(x)!, pick(base[from][i]!)!)).filter((v) => !Number.isNaN(v));
    return values.length ? median(values) : undefined;
  };
  const [direct] = rows as [Row];
  const nginx = rows.find((r) => r.name === 'nginx');
  const num = (v: number | undefined, digits: number, width: number) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits)).padStart(width);
  const addedP50 = (r: Row) => paired(r, direct, (x) => x.p50, (a, b) => a - b, 'one');
  const nginxAdded = nginx && addedP50(nginx);
  console.log(`bench:gateway: GET ${PATH} (${ANSWER_BYTES > 0 ? `a JSON answer of about ${ANSWER_BYTES} bytes` : 'a small JSON answer'}${ENCODING ? `, ${ENCODING} to the daemons` : ''}${CHUNKED ? ', chunked' : ''}) from a loopback upstream (node, its own process); ${pinned ? `upstream and proxies pinned to CPU 0, load generator to CPU 1 (${load.name.startsWith('wrk') ? 'to CPU 0 at one request at a time' : 'at one request at a time too'})` : 'not pinned (BENCH_PIN=0, or no taskset or 2 CPUs)'}; load generator: ${load.name}`);
  console.log(`${ROUNDS} interleaved rounds of ${SECONDS} s per target at ${CONNECTIONS} connections and ${SECONDS} s at 1; medians of the rounds (ratios and added p50 taken per round against the same round's direct or nginx); CPU of the proxy process(es) from /proc`);
  if (!nginx) console.log('nginx: not installed (Debian: apt-get install nginx-light), its rows and ratios are left out');
  console.log(`${''.padEnd(20)} ${`${CONNECTIONS} connections:`.padEnd(14)} req/s  ratio  p50 ms  p99 ms  CPU µs/req  ×nginx | 1 at a time: p50 ms  p99 ms  added p50 µs  ×nginx`);
  for (const r of rows) {
    const cpu = of(r, (x) => x.cpu);
    const added = addedP50(r);
    const cells = [
      num(of(r, (x) => x.rps), 0, 6),
      num(r === direct ? 1 : paired(r, direct, (x) => x.rps, (a, b) => a / b), 2, 6),
      num(of(r, (x) => x.p50), 2, 7),
      num(of(r, (x) => x.p99), 2, 7),
      num(cpu && cpu * 1e6, 0, 11),
      num(cpu && (r === nginx ? 1 : paired(r, nginx, (x) => x.cpu, (a, b) => a / b)), 1, 7),
    ];
    const oneCells = [num(of(r, (x) => x.p50, 'one'), 3, 7), num(of(r, (x) => x.p99, 'one'), 3, 7), num(added && added * 1000, 0, 13), num(added !== undefined && nginxAdded !== undefined && nginxAdded > 0 ? added / nginxAdded : undefined, 1, 7)];
    console.log(`${r.name.padEnd(20)} ${''.padEnd(Math.max(0, 34 - Math.max(20, r.name.length)))}${cells.join(' ')} |${''.padEnd(14)}${oneCells.join(' ')}`);
  }
  const nodeFloor = rows.find((r) => r.name === 'node floor')!;
  const overFloor = rows.filter((r) => r.name.startsWith('gateway') || r.name.startsWith('invoke')).map((r) => `${r.name} ${num(paired(r, nodeFloor, (x) => x.cpu, (a, b) => a / b), 1, 0)}×`);
  console.log(`CPU per request against Node's floor (node:http and undici adding the key, nothing of aivault's; bench/node-proxy.ts): ${overFloor.join(', ')}`);
  const fsync = median(syncs);
  console.log(`fdatasync of a 4 KiB append on the vaults' disk: median ${fsync.toFixed(0)} µs (${syncs.length} between the rounds); full's added p50 over it: ${rows.filter((r) => r.name.endsWith(', full')).map((r) => `${r.name.split(',')[0]} ${num(addedP50(r)! * 1000 - fsync, 0, 0)} µs`).join(', ')}`);
  for (const d of daemons) {
    const gc = [...d.gc.pauses].map(([kind, ms]) => `${kind} longest ${Math.max(...ms).toFixed(2)} ms, median ${median(ms).toFixed(2)} ms, ${ms.length} of them`).join('; ');
    console.log(`daemon, ${d.name}: RSS at the start, after the warm-up and after each round ${d.rss.map((m) => m.toFixed(1)).join(', ')} MiB (peak ${memoryMiB(d.pid, 'VmHWM').toFixed(1)}); GC pauses during the rounds (wall time): ${gc || 'none'}`);
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(root, { recursive: true, force: true });
}
