// `npm run demo`: the main job on the embedded default, in a throw-away vault.
// Runs the real CLI in child processes, exactly as a user would type it.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'aivault-demo-'));
const env = { ...process.env, AIVAULT_DIR: join(root, 'vault') };

function aivault(args: string[], input?: string): string {
  process.stdout.write(`\n$ aivault ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { env, input: input ?? '', encoding: 'utf8' });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.status !== 0) throw new Error(`aivault ${args[0]} exited ${r.status}`);
  return r.stdout;
}

try {
  aivault(['init', '--key-provider', 'keyfile']);
  const demoValue = `demo-${randomBytes(16).toString('hex')}`;
  aivault(['secrets', 'create', '--name', 'DEMO_API_KEY', '--value-stdin', '--description', 'throw-away demo key'], demoValue);
  aivault(['secrets', 'list']);
  aivault(['secrets', 'rotate', 'DEMO_API_KEY', '--value-stdin'], `${demoValue}-v2`);
  aivault(['secrets', 'describe', 'DEMO_API_KEY']);
  aivault(['secrets', 'verify']);
  process.stdout.write('\ndemo finished: the value was stored encrypted and never printed.\n');
} finally {
  rmSync(root, { recursive: true, force: true });
}
