// `npm run bench:cli`: what starting the CLI costs, against starting bare Node (`node -e 0`) in
// the same run: `aivault --version`, `aivault --help`, and an agent's `aivault invoke` through a
// daemon this script starts (with the same request sent by curl, when installed, for the
// daemon's own share). Uses `hyperfine -N` when installed, else times its own spawns. Rounds
// (BENCH_ROUNDS, 5) run every command in turn, so drift in machine load hits all alike; each
// row is the median of all runs. Also counts the modules each command loads (its own and its
// dependencies'). Goal: --version and --help within 2× of bare Node, invoke within 3×.
// What is timed is the installed program, dist/cli/main.js, built first (as `npm run build`);
// one more row runs src/cli/main.ts, which also pays for Node's TypeScript stripper.

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentVault } from './agent-vault.ts';
import { builtCli, startServe, startServerProcess } from './processes.ts';
import { findProgram } from './proc.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const repo = fileURLToPath(new URL('..', import.meta.url));
const CLI = builtCli();
const SOURCE_CLI = join(repo, 'src/cli/main.ts');
const COUNT_HOOK = fileURLToPath(new URL('./count-modules.ts', import.meta.url));
const node = process.execPath;

const root = mkdtempSync(join(tmpdir(), 'aivault-bench-cli-'));
const key = `sk-bench-${randomBytes(16).toString('hex')}`;
const masterKey = randomBytes(32).toString('base64');
const upstream = await startServerProcess('upstream-server.ts', { BENCH_EXPECT_AUTHORIZATION: `Bearer ${key}` });
const dir = join(root, 'vault');
const token = await agentVault({ dir, masterKey, host: upstream.host, key, capability: { name: 'chat', method: 'POST', path: '/v1/chat/completions' } });
const daemon = await startServe(dir, masterKey, 'cli');
const socket = join(dir, 'cli.sock');

// Every command runs with this environment: the agent's token and socket (which --version and
// --help ignore), and a compile cache of the bench's own, warmed before timing.
const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: root, XDG_CACHE_HOME: join(root, 'cache'), AIVAULT_AGENT_TOKEN: token, AIVAULT_SOCKET: socket };
mkdirSync(env.XDG_CACHE_HOME!, { mode: 0o700 });
const body = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });

interface Case {
  name: string;
  argv: string[];
  /** The ratio to bare Node this case should stay within. */
  goal?: number;
  /** An aivault command: its modules are counted. */
  cli?: boolean;
}

const cases: Case[] = [
  { name: 'node -e 0', argv: [node, '-e', '0'] },
  { name: 'aivault --version', argv: [node, CLI, '--version'], goal: 2, cli: true },
  { name: 'aivault --help', argv: [node, CLI, '--help'], goal: 2, cli: true },
  { name: 'aivault --version (src/*.ts)', argv: [node, SOURCE_CLI, '--version'], cli: true },
  { name: 'aivault invoke (agent, daemon)', argv: [node, CLI, 'invoke', 'bench/chat', '--method', 'POST', '--path', '/v1/chat/completions', '--header', 'content-type: application/json', '--body', body], goal: 3, cli: true },
];
const curl = findProgram('curl');
if (curl) {
  const payload = JSON.stringify({ capability: 'bench/chat', method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json']], body });
  cases.push({ name: 'curl, same request', argv: [curl, '-sf', '-o', '/dev/null', '--unix-socket', socket, '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '--data-raw', payload, 'http://aivault/v1/invoke'] });
}

// Each command must work before it is timed: a failing command is fast and means nothing.
for (const c of cases) {
  const r = spawnSync(c.argv[0]!, c.argv.slice(1), { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}: ${r.stderr}`);
  if (c.name.includes('invoke') && !r.stdout.includes('chatcmpl-1')) throw new Error(`${c.name} did not print the upstream's answer`);
}

/** Modules the command loads: [all, from node_modules]. */
function moduleCount(c: Case): [number, number] {
  const out = join(root, 'modules.json');
  const r = spawnSync(c.argv[0]!, ['--import', COUNT_HOOK, ...c.argv.slice(1)], { env: { ...env, BENCH_MODULES_OUT: out } });
  if (r.status !== 0) throw new Error(`${c.name} exited ${r.status} while counting modules`);
  const urls = JSON.parse(readFileSync(out, 'utf8')) as string[];
  return [urls.length, urls.filter((u) => u.includes('/node_modules/')).length];
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);

/** Wall times in ms per case, from `hyperfine -N` rounds. */
function hyperfineTimes(hyperfine: string): number[][] {
  const times: number[][] = cases.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    const out = join(root, `round-${round}.json`);
    // Each round starts with a different case, so none always follows the daemon's warm-up.
    const order = cases.map((_, i) => (i + round) % cases.length);
    execFileSync(hyperfine, ['-N', '--style', 'none', '--warmup', '2', '--runs', String(RUNS), '--export-json', out, ...order.map((i) => cases[i]!.argv.map(quote).join(' '))], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const results = (JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ times: number[] }> }).results;
    order.forEach((i, k) => times[i]!.push(...results[k]!.times.map((s) => s * 1000)));
  }
  return times;
}

/** Wall times in ms per case, spawning each in turn (spawnSync's own cost included for all alike). */
function spawnTimes(): number[][] {
  const times: number[][] = cases.map(() => []);
  for (let round = 0; round < ROUNDS * RUNS + 2; round++) {
    cases.forEach((c, i) => {
      const t = performance.now();
      spawnSync(c.argv[0]!, c.argv.slice(1), { env, stdio: 'ignore' });
      if (round >= 2) times[i]!.push(performance.now() - t);
    });
  }
  return times;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  const hyperfine = findProgram('hyperfine');
  const counts = cases.map((c) => (c.cli ? moduleCount(c) : undefined));
  const times = hyperfine ? hyperfineTimes(hyperfine) : spawnTimes();
  const base = median(times[0]!);
  console.log(`CLI start-up, ${hyperfine ? 'hyperfine -N' : 'spawnSync'}: ${ROUNDS} rounds × ${RUNS} runs, medians; aivault is ${CLI}`);
  console.log(['command'.padEnd(32), 'median ms'.padStart(10), 'p90 ms'.padStart(8), '× node'.padStart(8), 'goal'.padStart(6), 'modules (deps)'.padStart(16)].join(''));
  let missed = 0;
  cases.forEach((c, i) => {
    const m = median(times[i]!);
    const p90 = [...times[i]!].sort((a, b) => a - b)[Math.floor(times[i]!.length * 0.9)]!;
    const ratio = m / base;
    const goal = c.goal === undefined ? '' : ratio <= c.goal ? `≤${c.goal}×` : `>${c.goal}×!`;
    if (c.goal !== undefined && ratio > c.goal) missed++;
    const count = counts[i] ? `${counts[i]![0]} (${counts[i]![1]})` : '';
    console.log([c.name.padEnd(32), m.toFixed(1).padStart(10), p90.toFixed(1).padStart(8), ratio.toFixed(2).padStart(8), goal.padStart(6), count.padStart(16)].join(''));
  });
  if (missed > 0) console.log(`${missed} command(s) over their goal (the machine's load counts: rerun on a quiet machine before concluding)`);
} finally {
  daemon.child.kill('SIGTERM');
  upstream.child.kill('SIGTERM');
  await new Promise((r) => daemon.child.once('exit', r));
  rmSync(root, { recursive: true, force: true });
}
