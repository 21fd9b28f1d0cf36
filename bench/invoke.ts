// `npm run bench:invoke`: requests through the in-process broker vs straight to the same
// loopback upstream with undici, in the same process and the same run. Prints throughput
// for each and the ratio to direct, and the latency the broker adds at p50 and p99.
// The broker runs once with each audit durability: `full` (flushed to disk before the
// request goes out) and `crash-safe` (in the write-ahead log, survives a killed process);
// and once as an agent granted four keys, whose answers are scrubbed of all of them.
// Both phases run in interleaved rounds (BENCH_ROUNDS, 3), so drift in machine load hits
// every variant alike; throughput is the median of the rounds.

import { percentile, startServerProcess } from './processes.ts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { AuditDurability } from '../src/audit/writer.ts';
import type { Broker, InvokeContext } from '../src/broker/broker.ts';
import { composeServices } from '../src/services.ts';
import { builtinRegistry } from '../src/registry/registry.ts';
import { Vault } from '../src/vault/vault.ts';

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 3000);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 6000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = 300;

const { host, child } = await startServerProcess('upstream-server.ts');
const root = mkdtempSync(join(tmpdir(), 'aivault-bench-'));
const payload = Buffer.from(JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }));
const key = `sk-bench-${randomBytes(16).toString('hex')}`;
const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });

async function setup(durability: AuditDurability): Promise<{ vault: Vault; broker: Broker; agent: InvokeContext }> {
  const vault = await Vault.init({ dir: join(root, durability), keyProvider: 'env', env: { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') } });
  await vault.setAuditDurability(durability);
  const { broker, definitions, agents } = composeServices(vault, await builtinRegistry());
  const secret = await vault.createSecret({ name: 'BENCH_KEY', value: Buffer.from(key) });
  await definitions.createCredential({ name: 'bench', provider: 'bench', auth: { header: { header_name: 'authorization', value_template: 'Bearer {{secret}}' } }, secretRefs: { secret: secret.ref }, hosts: [host], allowHttp: true, allowPrivateNetwork: true });
  await definitions.createCapability({ id: 'bench/chat', provider: 'bench', credential: 'bench', methods: ['POST'], pathPrefixes: ['/v1/chat/completions'], hosts: [] });
  // An agent granted it and three other keys: its answers are scrubbed of all four.
  const { agent: record } = await agents.create('bench-agent');
  await agents.grant({ agent: record.id, capability: 'bench/chat' }, ['POST']);
  for (let i = 0; i < 3; i++) {
    const other = await vault.createSecret({ name: `BENCH_OTHER_${i}`, value: Buffer.from(`sk-other-${randomBytes(16).toString('hex')}`) });
    await definitions.createCredential({ name: `other${i}`, provider: `other${i}`, auth: { header: { header_name: 'x-api-key', value_template: '{{secret}}' } }, secretRefs: { secret: other.ref }, hosts: [host], allowHttp: true, allowPrivateNetwork: true });
    await definitions.createCapability({ id: `other${i}/read`, provider: `other${i}`, credential: `other${i}`, methods: ['GET'], pathPrefixes: ['/v1'], hosts: [] });
    await agents.grant({ agent: record.id, capability: `other${i}/read` }, ['GET']);
  }
  return { vault, broker, agent: { agent: record } };
}

async function direct(): Promise<void> {
  const res = await request(`http://${host}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: payload, dispatcher: agent });
  await res.body.arrayBuffer();
}

function via(broker: Broker, context: InvokeContext = {}) {
  return async (): Promise<void> => {
    const res = await broker.invoke({ capability: 'bench/chat', method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json']], body: payload }, context);
    for await (const _ of res.body) void _;
    await res.done;
  };
}

async function latencies(fn: () => Promise<void>, n: number, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    into.push(performance.now() - t);
  }
}

async function throughput(fn: () => Promise<void>, n: number, concurrency: number): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < n) await fn();
  }));
  return n / ((performance.now() - t) / 1000);
}

const fmt = (n: number) => n.toFixed(3);

const full = await setup('full');
const crashSafe = await setup('crash-safe');
const runs = [
  { name: 'direct', fn: direct, lat: [] as number[], rps: [] as number[] },
  { name: 'broker, audit full', fn: via(full.broker), lat: [] as number[], rps: [] as number[] },
  { name: 'broker, audit crash-safe', fn: via(crashSafe.broker), lat: [] as number[], rps: [] as number[] },
  { name: 'agent, audit crash-safe', fn: via(crashSafe.broker, crashSafe.agent), lat: [] as number[], rps: [] as number[] },
];
const rps = (r: (typeof runs)[number]) => percentile(r.rps, 50);
try {
  for (const r of runs) await latencies(r.fn, WARMUP, []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const r of runs) {
      await latencies(r.fn, Math.ceil(SEQUENTIAL / ROUNDS), r.lat);
      r.rps.push(await throughput(r.fn, Math.ceil(CONCURRENT / ROUNDS), CONCURRENCY));
    }
  }

  const base = runs[0]!;
  console.log(`bench:invoke: small POST to a loopback upstream in its own process; ${SEQUENTIAL} sequential requests and ${CONCURRENT} with ${CONCURRENCY} in flight per variant, in ${ROUNDS} interleaved rounds (req/s: median of the rounds)`);
  for (const r of runs) {
    const added = r === base ? '' : `  added p50 +${fmt(percentile(r.lat, 50) - percentile(base.lat, 50))} ms, p99 +${fmt(percentile(r.lat, 99) - percentile(base.lat, 99))} ms`;
    console.log(`${r.name.padEnd(26)} p50 ${fmt(percentile(r.lat, 50))} ms  p99 ${fmt(percentile(r.lat, 99))} ms  ${rps(r).toFixed(0).padStart(6)} req/s  ratio ${(rps(r) / rps(base)).toFixed(2)}${added}`);
  }
  for (const [name, v] of [['full', full.vault], ['crash-safe', crashSafe.vault]] as const) {
    const verify = await v.audit.verify();
    console.log(`audit chain (${name}): ${verify.ok ? 'intact' : 'BROKEN'}, ${verify.count} records`);
  }
} finally {
  for (const { broker, vault } of [full, crashSafe]) {
    await broker.close();
    await vault.close();
  }
  await agent.close();
  child.kill('SIGTERM');
  rmSync(root, { recursive: true, force: true });
}
