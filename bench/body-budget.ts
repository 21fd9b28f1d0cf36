// One agent sends 16 concurrent invokes of 8 MB each to an upstream that echoes them, while another
// agent invokes once: the daemon's peak RSS, how many were admitted, the bystander's latency.
// `npm run -s bench:body-budget`; EXTRA='--max-buffered-body-bytes N' passes serve options.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempVault } from '../test/helpers/cli.ts';
import { startDaemon } from '../test/helpers/daemon.ts';
import { startUpstream } from '../test/helpers/upstream.ts';

const v = await tempVault();
const up = await startUpstream();
const ref = (await v.cli(['secrets', 'create', '--name', 'RSS_KEY', '--value', 'rss-key-0123456789'])).stdout.trim();
for (const args of [
  ['credential', 'create', 'echo', '--provider', 'echo', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', up.host, '--allow-http', '--allow-private-network'],
  ['capability', 'create', 'echo/read', '--provider', 'echo', '--credential', 'echo', '--method', 'POST', '--path', '/v1'],
]) assert.equal((await v.cli(args)).code, 0, args.join(' '));
const token = (JSON.parse((await v.cli(['agent', 'create', 'bot', '--json'])).stdout) as { token: string }).token;
const other = (JSON.parse((await v.cli(['agent', 'create', 'other', '--json'])).stdout) as { token: string }).token;
for (const a of ['bot', 'other']) assert.equal((await v.cli(['grant', a, 'echo/read'])).code, 0);
const d = await startDaemon(v, ['--socket', join(v.dir, 'r.sock'), '--listen', '127.0.0.1:0', ...(process.env.EXTRA ? process.env.EXTRA.split(' ') : [])]);
const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.process.pid}/status`, 'utf8'))![1]) / 1024;
const invoke = async (t: string, body: string) => { try { return await invoke1(t, body); } catch (e) { return { status: 0, code: (e as Error).message, ms: 0 }; } };
const invoke1 = async (t: string, body: string) => {
  const started = Date.now();
  const res = await fetch(`${d.url}/v1/invoke`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'echo/read', method: 'POST', path: '/v1/x', body }) });
  await res.arrayBuffer();
  return { status: res.status, code: res.headers.get('x-aivault-error'), ms: Date.now() - started };
};
await invoke(token, 'warm');
const baseline = rss();
let peak = baseline;
const sampler = setInterval(() => (peak = Math.max(peak, rss())), 10);
const big = 'a'.repeat(8 * 1000 * 1000);
const flood = Array.from({ length: 16 }, () => invoke(token, big));
await new Promise((r) => setTimeout(r, 200));
const bystander = await invoke(other, 'hi');
const results = await Promise.all(flood);
clearInterval(sampler);
const tally: Record<string, number> = {};
for (const r of results) tally[`${r.status} ${r.code ?? ''}`.trim()] = (tally[`${r.status} ${r.code ?? ''}`.trim()] ?? 0) + 1;
console.log(JSON.stringify({ baselineMiB: Math.round(baseline), peakMiB: Math.round(peak), flood: tally, bystander }));
await d.stop();
await up.close();
v.cleanup();
