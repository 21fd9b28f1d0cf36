// What the CLI loads to start: `--version` and `--help` nothing but themselves; a command its
// own module and commander (`invoke --help` not the tree's others);
// an agent's `invoke` through the daemon needs the agent client, not the vault,
// the services, or the daemon's, MCP's and PostgreSQL's dependencies. Every command pays for
// what it loads on every run (an agent that shells out pays it on every call).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CLI } from '../helpers/cli.ts';

const HOOK = fileURLToPath(new URL('../../bench/count-modules.ts', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'aivault-start-up-'));

/** The files a CLI run loads, as paths under the repository or node_modules/PACKAGE/…. */
async function loaded(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const out = join(dir, `modules-${args[0]}.json`);
  // Asynchronously: the fake daemon below answers from this process.
  await promisify(execFile)(process.execPath, ['--import', HOOK, CLI, ...args], { env: { PATH: process.env.PATH, HOME: dir, NODE_DISABLE_COMPILE_CACHE: '1', BENCH_MODULES_OUT: out, ...env }, timeout: 60_000 });
  return (JSON.parse(readFileSync(out, 'utf8')) as string[]).map((url) => url.replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/(src|bench)\//, '$1/'));
}

const packages = (files: readonly string[]) => [...new Set(files.filter((f) => f.startsWith('node_modules/')).map((f) => f.split('/').slice(1, f.split('/')[1]!.startsWith('@') ? 3 : 2).join('/')))].sort();

describe('CLI start-up', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const args of [['--version'], ['--help']]) {
    it(`aivault ${args[0]} loads no package and no command`, async () => {
      const files = await loaded(args);
      assert.deepEqual(packages(files), []);
      assert.deepEqual(files.filter((f) => f.startsWith('src/cli/commands/')), []);
    });
  }

  it('aivault invoke --help loads its own command module, not the others', async () => {
    const files = await loaded(['invoke', '--help']);
    assert.deepEqual(files.filter((f) => f.startsWith('src/cli/commands/')), ['src/cli/commands/invoke.ts']);
  });

  for (const args of [['invoke', '--help']]) {
    it(`aivault ${args.join(' ')} loads commander and none of the vault, the services or the daemon`, async () => {
      const files = await loaded(args);
      assert.deepEqual(packages(files), ['commander']);
      assert.deepEqual(files.filter((f) => /^src\/(vault\/vault|services|storage\/(sqlite|postgres)|server\/daemon|sdk\/agent-client)\.ts$/.test(f)), []);
    });
  }

  describe("an agent's invoke through the daemon", () => {
    const socket = join(dir, 'daemon.sock');
    const daemon = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('{"ok":true}'));
    });
    before(() => new Promise<void>((resolve) => daemon.listen(socket, resolve)));
    after(() => new Promise<void>((resolve) => daemon.close(() => resolve())));

    it('loads the agent client (on node:http), not undici, the vault, the services, ws, zod, pg, pino or the MCP SDK', async () => {
      const files = await loaded(['invoke', 'demo/read', '--path', '/v1/x'], { AIVAULT_AGENT_TOKEN: 'avt_test', AIVAULT_SOCKET: socket });
      assert.ok(files.includes('src/sdk/agent-client.ts'));
      assert.deepEqual(packages(files), ['commander']);
      assert.deepEqual(files.filter((f) => /^src\/(vault\/vault|services|broker\/broker|owner\/operations)\.ts$/.test(f)), []);
    });
  });
});
