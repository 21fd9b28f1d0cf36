// `npm run bench:cluster`: agents invoking through 1, 2 and 3 `aivault serve` replicas (each
// its own process) on one PostgreSQL vault, round-robin as a load balancer would, against
// one loopback upstream in its own process. Same run, same load for each: prints
// throughput and latency per replica count, the ratio to one replica, and (for scale) the
// embedded SQLite engine with one daemon and undici straight to the upstream.
// Needs the PostgreSQL server: AIVAULT_BENCH_DATABASE_URL, default postgres://$USER@127.0.0.1:5432/test.

import type { ChildProcess } from 'node:child_process';
import { percentile, startServe, startServerProcess } from './processes.ts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Agent, request } from 'undici';
import { agentVault } from './agent-vault.ts';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 4000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const WARMUP = 300;
const BASE_URL = process.env.AIVAULT_BENCH_DATABASE_URL ?? `postgres://${encodeURIComponent(userInfo().username)}@127.0.0.1:5432/test`;

const { host, child: upstream } = await startServerProcess('upstream-server.ts');
const root = mkdtempSync(join(tmpdir(), 'aivault-bench-cluster-'));
const payload = JSON.stringify({ capability: 'bench/chat', method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }) });
const client = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
const schemas: string[] = [];

/** A vault with one capability and one granted agent; returns the agent token. */
const setup = (dir: string, masterKey: string, databaseUrl?: string) =>
  agentVault({ dir, masterKey, ...(databaseUrl ? { databaseUrl } : {}), host, key: `sk-bench-${randomBytes(16).toString('hex')}`, capability: { name: 'chat', method: 'POST', path: '/v1/chat/completions' } });

async function load(call: (i: number) => Promise<void>, n: number): Promise<{ rps: number; lat: number[] }> {
  let next = 0;
  const lat: number[] = [];
  const t = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < n; i = next++) {
      const s = performance.now();
      await call(i);
      lat.push(performance.now() - s);
    }
  }));
  return { rps: n / ((performance.now() - t) / 1000), lat };
}

const invokeVia = (urls: string[], token: string) => async (i: number) => {
  const res = await request(`${urls[i % urls.length]}/v1/invoke`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: payload, dispatcher: client });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`invoke answered ${res.statusCode}`);
};

const direct = async () => {
  const res = await request(`http://${host}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload, dispatcher: client });
  await res.body.arrayBuffer();
};


interface Row { name: string; rps: number; lat: number[] }
const rows: Row[] = [];
const children: ChildProcess[] = [];
try {
  const masterKey = randomBytes(32).toString('base64');
  const measure = async (name: string, call: (i: number) => Promise<void>) => {
    await load(call, WARMUP);
    rows.push({ name, ...(await load(call, REQUESTS)) });
  };
  await measure('direct (no aivault)', direct);

  const sqliteDir = join(root, 'sqlite');
  const sqliteToken = await setup(sqliteDir, masterKey);
  const sqliteReplica = await startServe(sqliteDir, masterKey, 'r0');
  children.push(sqliteReplica.child);
  await measure('sqlite, 1 daemon', invokeVia([sqliteReplica.url], sqliteToken));
  sqliteReplica.child.kill('SIGTERM');

  for (const count of [1, 2, 3]) {
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    const url = new URL(BASE_URL);
    url.searchParams.set('schema', schema);
    const dir = join(root, `pg${count}`);
    const token = await setup(dir, masterKey, url.href);
    const replicas = await Promise.all(Array.from({ length: count }, (_, i) => startServe(dir, masterKey, `r${i}`)));
    children.push(...replicas.map((r) => r.child));
    await measure(`postgres, ${count} replica${count > 1 ? 's' : ''}`, invokeVia(replicas.map((r) => r.url), token));
    for (const r of replicas) r.child.kill('SIGTERM');
  }

  const one = rows.find((r) => r.name === 'postgres, 1 replica')!;
  console.log(`bench:cluster: ${REQUESTS} invokes with ${CONCURRENCY} in flight per row, round-robin over the replicas; upstream and each replica in their own processes; ${process.env.BENCH_NOTE ?? 'audit durability crash-safe'}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(22)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${percentile(r.lat, 50).toFixed(2)} ms  p99 ${percentile(r.lat, 99).toFixed(2)} ms  ratio to 1 postgres replica ${(r.rps / one.rps).toFixed(2)}`);
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  upstream.kill('SIGTERM');
  await client.close();
  const admin = new pg.Client({ connectionString: BASE_URL });
  await admin.connect().then(async () => {
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await admin.end();
  }).catch(() => {});
  rmSync(root, { recursive: true, force: true });
}
