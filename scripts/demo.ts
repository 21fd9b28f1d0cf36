// `npm run demo`: the main job on the embedded default, in a throw-away vault. A local
// stand-in upstream checks the API key; the agent-side command never sees it.
// Runs the real CLI in child processes, exactly as a user would type it.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'aivault-demo-'));
const env = { ...process.env, AIVAULT_DIR: join(root, 'vault') };
const apiKey = `demo-${randomBytes(16).toString('hex')}`;

// The "third-party API": answers only when the real key arrives, and echoes it back
// to show that aivault scrubs a reflected secret.
const upstream = createServer((req, res) => {
  const ok = req.headers.authorization === `Bearer ${apiKey}`;
  res.statusCode = ok ? 200 : 401;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(ok ? { users: [{ id: 42, name: 'Ada' }], echoedKey: apiKey } : { error: 'bad key' }));
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const host = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;

function aivault(args: string[], input = ''): Promise<string> {
  process.stdout.write(`\n$ aivault ${args.map((a) => (/[\s{}]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      process.stdout.write(d);
    });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`aivault ${args[0]} exited ${code}`))));
    child.stdin.end(input);
  });
}

try {
  await aivault(['init', '--key-provider', 'keyfile', '--no-guide']);
  const ref = (await aivault(['secrets', 'create', '--name', 'DEMO_API_KEY', '--value-stdin', '--description', 'throw-away demo key'], apiKey)).trim();
  await aivault(['credential', 'create', 'demo-api', '--provider', 'demo-api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', host, '--allow-http', '--allow-private-network']);
  await aivault(['capability', 'create', 'demo-api/users', '--provider', 'demo-api', '--credential', 'demo-api', '--method', 'GET', '--path', '/v1/users', '--host', host]);
  await aivault(['invoke', 'demo-api/users', '--method', 'GET']);
  process.stdout.write('\n');
  await aivault(['invoke', 'demo-api/users', '--path', '/v1/admin']).catch(() => process.stdout.write('(refused, as it should be)\n'));
  await aivault(['audit', 'list']);
  await aivault(['audit', 'verify']);
  process.stdout.write('\ndemo finished: the key went upstream, never to the caller (the echoed copy came back [REDACTED]).\n');
} finally {
  upstream.close();
  rmSync(root, { recursive: true, force: true });
}
