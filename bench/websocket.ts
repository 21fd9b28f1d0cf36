// `npm run bench:ws`: WebSocket messages straight to a loopback echo server vs through the
// gateway of an `aivault serve` process (admission, credential in the upgrade, every server
// message scrubbed), same run, same machine. Prints round-trip latency (one message at a
// time) and pipelined throughput for each, and the ratio to direct; plus the time to open
// a session (upgrade admitted, audited, upstream connected).

import { percentile, startServe, startServerProcess } from './processes.ts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { agentVault } from './agent-vault.ts';

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 3000);
const PIPELINED = Number(process.env.BENCH_PIPELINED ?? 30000);
const OPENS = Number(process.env.BENCH_OPENS ?? 200);
const SIZE = Number(process.env.BENCH_MESSAGE_BYTES ?? 1024);

const { host, child: echo } = await startServerProcess('ws-echo-server.ts');
const root = mkdtempSync(join(tmpdir(), 'aivault-bench-ws-'));
const masterKey = randomBytes(32).toString('base64');
const key = `sk-bench-${randomBytes(16).toString('hex')}`;
const message = JSON.stringify({ type: 'input_audio_buffer.append', audio: randomBytes(SIZE).toString('base64') }).slice(0, SIZE);

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode} ${String(res.headers['x-aivault-error'])}`)));
  });
}

async function roundTrips(ws: WebSocket, n: number): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise<void>((resolve) => {
      ws.once('message', () => resolve());
      ws.send(message);
    });
    lat.push(performance.now() - t);
  }
  return lat;
}

async function pipelined(ws: WebSocket, n: number): Promise<number> {
  const t = performance.now();
  await new Promise<void>((resolve) => {
    let got = 0;
    const on = () => {
      if (++got === n) {
        ws.off('message', on);
        resolve();
      }
    };
    ws.on('message', on);
    for (let i = 0; i < n; i++) ws.send(message);
  });
  return n / ((performance.now() - t) / 1000);
}

async function opens(url: string, headers: Record<string, string>, n: number): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const ws = await open(url, headers);
    lat.push(performance.now() - t);
    ws.close();
  }
  return lat;
}

const ms = (x: number) => `${x.toFixed(3)} ms`;

const dir = join(root, 'vault');
const token = await agentVault({ dir, masterKey, host, key, capability: { name: 'realtime', method: 'GET', path: '/v1/realtime', websocket: true } });
const serving = await startServe(dir, masterKey, 'd');
const daemon = { url: serving.url.replace(/^http/, 'ws'), child: serving.child };
try {
  const targets = {
    direct: { url: `ws://${host}/v1/realtime`, headers: { authorization: `Bearer ${key}` } },
    gateway: { url: `${daemon.url}/gw/bench/v1/realtime`, headers: { authorization: `Bearer ${token}` } },
  };
  const results: Record<string, { p50: number; p99: number; mps: number; open50: number; open99: number }> = {};
  for (const [name, t] of Object.entries(targets)) {
    const ws = await open(t.url, t.headers);
    await roundTrips(ws, 200); // warm-up
    const lat = await roundTrips(ws, ROUND_TRIPS);
    const mps = await pipelined(ws, PIPELINED);
    ws.close();
    const o = await opens(t.url, t.headers, OPENS);
    results[name] = { p50: percentile(lat, 50), p99: percentile(lat, 99), mps, open50: percentile(o, 50), open99: percentile(o, 99) };
  }
  const d = results.direct!;
  console.log(`WebSocket, ${SIZE}-byte text messages; ${ROUND_TRIPS} round trips, ${PIPELINED} pipelined, ${OPENS} session opens (node ${process.version})`);
  console.log('path       round trip p50   p99          pipelined msg/s   ratio   open p50      open p99');
  for (const [name, r] of Object.entries(results)) {
    console.log(`${name.padEnd(10)} ${ms(r.p50).padEnd(16)} ${ms(r.p99).padEnd(12)} ${Math.round(r.mps).toString().padEnd(17)} ${(r.mps / d.mps).toFixed(2).padEnd(7)} ${ms(r.open50).padEnd(13)} ${ms(r.open99)}`);
  }
} finally {
  daemon.child.kill('SIGTERM');
  echo.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  rmSync(root, { recursive: true, force: true });
}
