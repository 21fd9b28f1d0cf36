// Node's own floor for the gateway's job: the least a reverse proxy written on the same
// runtime and libraries does (node:http in, an undici pool out, the API key added, the answer
// buffered and sent back), with nothing of aivault's: no agent, policy, audit or scrubbing.
// bench:gateway runs it beside nginx, so what aivault adds is told apart from what Node costs.
// Prints its port on stdout. BENCH_UPSTREAM: host:port; BENCH_AUTHORIZATION: the header it adds.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const pool = new Pool(`http://${process.env.BENCH_UPSTREAM}`, { connections: 64, keepAliveTimeout: 10_000 });
const authorization = process.env.BENCH_AUTHORIZATION ?? '';
const server = createServer(async (req, res) => {
  try {
    const upstream = await pool.request({ path: req.url ?? '/', method: 'GET', headers: { authorization } });
    const body = Buffer.from(await upstream.body.arrayBuffer());
    const type = upstream.headers['content-type'];
    res.writeHead(upstream.statusCode, typeof type === 'string' ? { 'content-type': type } : {});
    res.end(body);
  } catch {
    res.writeHead(502).end();
  }
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
