// The package as a user gets it: `npm pack`, `npm install -g` of the tarball into a temporary
// prefix, then the installed `aivault` run by each Node found on PATH (the machine's Node 20,
// any Node 22, and the pinned Node 24 running this test) first on PATH, as a shell would run it.
// On Node 20 and 22 the launcher runs the CLI on the Node the package brings.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertNoLeak, canary, type CliResult } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs a command without blocking this process's loop (the upstream answers on it, while other Nodes' runs go on). */
function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd = ROOT): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', (err) => (stderr += String(err)));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** One directory holding a `node` of each major version on PATH, this test's own Node first. */
function nodesOnPath(): Map<number, string> {
  const found = new Map<number, string>();
  const seen = new Set<string>();
  for (const dir of [dirname(process.execPath), ...(process.env.PATH ?? '').split(delimiter)]) {
    const node = join(dir, 'node');
    try {
      accessSync(node, constants.X_OK);
      if (seen.has(realpathSync(node))) continue;
      seen.add(realpathSync(node));
    } catch {
      continue;
    }
    const major = Number(/^v(\d+)\./.exec(spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout)?.[1]);
    if (major && !found.has(major)) found.set(major, dir);
  }
  return found;
}

const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
const skip = npm.status === 0 ? false : `npm is not available (${npm.error?.message ?? npm.stderr})`;
const nodes = nodesOnPath();

describe('the packed package, installed globally', { skip, timeout: 300_000, concurrency: true }, () => {
  let root: string;
  let prefix: string;
  let up: Upstream;
  let install: CliResult;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'aivault-pack-'));
    prefix = join(root, 'prefix');
    up = await startUpstream();
    const packed = await run('npm', ['pack', '--pack-destination', root], process.env);
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = join(root, packed.stdout.trim().split('\n').at(-1)!);
    // Installed as a user on the oldest of these Nodes would: with that Node's npm.
    const oldest = nodes.get(Math.min(...nodes.keys()))!;
    const env = { ...process.env, PATH: [oldest, process.env.PATH].join(delimiter) };
    install = await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], env, root);
    assert.equal(install.code, 0, install.stderr);
  });
  after(async () => {
    await up.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('installs without an engine warning', () => {
    assert.doesNotMatch(install.stderr, /EBADENGINE/);
  });

  it('finds the Node 20 and 24 it runs the package on', () => {
    assert.ok(nodes.has(24), 'the pinned Node 24');
    assert.ok(nodes.has(20), `a Node 20 on PATH (found: ${[...nodes.keys()].join(', ')})`);
  });

  for (const [major, nodeDir] of nodes) {
    it(`runs on Node ${major}: --version, init, secrets create, invoke, serve stopped by SIGTERM`, async () => {
      const home = join(root, `home-${major}`);
      const env: NodeJS.ProcessEnv = {
        PATH: [nodeDir, join(prefix, 'bin'), '/usr/bin', '/bin'].join(delimiter),
        HOME: home,
        AIVAULT_DIR: join(home, 'vault'),
        AIVAULT_MASTER_KEY: Buffer.alloc(32, major).toString('base64'),
      };
      const aivault = (args: readonly string[]) => run('aivault', args, env, root);
      const key = canary(`NODE${major}`);

      const version = await aivault(['--version']);
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout.trim(), VERSION);
      const init = await aivault(['init', '--key-provider', 'env', '--no-guide']);
      assert.equal(init.code, 0, init.stderr);
      const created = await aivault(['secrets', 'create', '--name', 'MY_KEY', '--value', key]);
      assert.equal(created.code, 0, created.stderr);
      const host = up.host;
      for (const args of [
        ['credential', 'create', 'my-api', '--provider', 'my-api', '--secret-ref', created.stdout.trim(), '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', host, '--allow-http', '--allow-private-network'],
        ['capability', 'create', 'my-api/users', '--provider', 'my-api', '--credential', 'my-api', '--method', 'GET', '--path', '/v1/users', '--host', host],
      ]) {
        const r = await aivault(args);
        assert.equal(r.code, 0, r.stderr);
      }
      const invoked = await aivault(['invoke', 'my-api/users', '--method', 'GET']);
      assert.equal(invoked.code, 0, invoked.stderr);
      assert.equal((JSON.parse(invoked.stdout) as { url: string }).url, '/v1/users');
      assert.ok(up.received.some((r) => r.headers.authorization === `Bearer ${key}`), 'the upstream got the credential');
      for (const r of [version, init, created, invoked]) assertNoLeak(r.stdout + r.stderr, key, 'CLI output');

      // SIGTERM to the `aivault` process (the launcher on an old Node) reaches the daemon, which
      // shuts down in order (audit log flushed) and exits 0.
      const daemon = spawn('aivault', ['serve', '--socket', join(home, 's.sock')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      daemon.stderr.on('data', (d: Buffer) => (log += d));
      await new Promise<void>((resolve, reject) => {
        daemon.stdout.once('data', () => resolve());
        daemon.once('exit', (code) => reject(new Error(`serve exited ${code}: ${log}`)));
      });
      const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
      daemon.kill('SIGTERM');
      assert.equal(await exited, 0, log);
      assert.match(log, /stopped; audit log flushed/);
    });
  }
});
