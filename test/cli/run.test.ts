// `aivault run`: an unmodified child process as an agent, with no credential in its
// environment, and a derived agent that does not outlive it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, canary, tempVault, type TempVault, CHILD_ENV } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { dropSchema, freshSchema, schemaUrl } from '../helpers/postgres.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

/** A child that prints its token and pid, then runs until a signal ends it. */
const LONG_RUNNING = `console.log(JSON.stringify({ token: process.env.AIVAULT_AGENT_TOKEN, pid: process.pid })); setInterval(() => {}, 1000);`;

describe('aivault run', () => {
  let v: TempVault;
  let d: RunningDaemon;
  let up: Upstream;
  const realKey = canary('sk-run');
  const custom = canary('CUSTOM');
  const customNext = canary('CUSTOM_NEXT');
  const started: ChildProcess[] = [];

  const invoke = async (token: string): Promise<{ status: number; code?: string }> => {
    const res = await fetch(`${d.url}/v1/invoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ capability: 'api/users', method: 'GET', path: '/v1/users' }),
    });
    const body = (await res.json()) as { code?: string };
    return { status: res.status, ...(body.code ? { code: body.code } : {}) };
  };

  /** `aivault run` with a long-running child, once the child has printed its token. */
  const runLong = async (extra: string[] = [], wrap?: (argv: string[]) => string[]) => {
    const argv = [CLI, 'run', '--agent', 'runner', '--url', d.url!, ...extra, '--', process.execPath, '-e', LONG_RUNNING];
    const [file, ...args] = wrap ? wrap([process.execPath, ...argv]) : [process.execPath, ...argv];
    const run = spawn(file!, args, { env: { ...CHILD_ENV, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(run);
    let stderr = '';
    run.stderr!.on('data', (c: Buffer) => (stderr += c));
    const line = await Promise.race([
      once(createInterface({ input: run.stdout! }), 'line').then(([l]) => l as string),
      once(run, 'exit').then(([code]) => Promise.reject(new Error(`run exited ${code} before the child started: ${stderr}`))),
    ]);
    const child = JSON.parse(line) as { token: string; pid: number };
    return { run, child, stderr: () => stderr };
  };

  /** What the daemon answers the token: the derived agent's state as its holder sees it. */
  const agentStatus = async (token: string): Promise<number> => (await fetch(`${d.url}/v1/capabilities`, { headers: { authorization: `Bearer ${token}` } })).status;

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    const ref = (await v.cli(['secrets', 'create', '--name', 'RUN_API_KEY', '--value', canary('API')])).stdout.trim();
    for (const args of [
      ['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', realKey],
      ['secrets', 'create', '--name', 'SOME_CUSTOM', '--value', custom],
      // `custom` is now a kept version: a rollback would bring it back, so it is as secret.
      ['secrets', 'rotate', 'SOME_CUSTOM', '--value', customNext],
      ['credential', 'create', 'api', '--provider', 'api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network'],
      ['capability', 'create', 'api/users', '--provider', 'api', '--credential', 'api', '--method', 'GET', '--path', '/v1'],
      ['agent', 'create', 'runner'],
      ['grant', 'runner', 'openai/chat-completions'],
      ['grant', 'runner', 'api/users'],
    ]) assert.equal((await v.cli(args)).code, 0, args.join(' '));
    d = await startDaemon(v, ['--listen', '127.0.0.1:0']);
  });
  after(async () => {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await d.stop();
    await up.close();
    v.cleanup();
  });

  it('gives the child a working derived agent token and gateway URLs, and strips every secret from its environment', async () => {
    const script = `
      const caps = await fetch(process.env.AIVAULT_URL + '/v1/capabilities', { headers: { authorization: 'Bearer ' + process.env.AIVAULT_AGENT_TOKEN } });
      console.log(JSON.stringify({ env: process.env, capabilities: (await caps.json()).map((c) => c.id) }));
      process.exit(3);`;
    const r = await v.cli(['run', '--agent', 'runner', '--url', d.url!, '--', process.execPath, '--input-type=module', '-e', script], {
      env: { OPENAI_API_KEY: realKey, PASSES_THROUGH: 'hello', COPY_OF_CUSTOM: custom, COPY_OF_NEXT: customNext, AIVAULT_MASTER_KEY: 'owner-key-material' },
    });
    assert.equal(r.code, 3, r.stderr);
    const out = JSON.parse(r.stdout) as { env: Record<string, string>; capabilities: string[] };
    assert.deepEqual(out.capabilities.sort(), ['api/users', 'openai/chat-completions']);
    assert.equal(out.env.OPENAI_BASE_URL, `${d.url}/gw/openai/v1`);
    assert.equal(out.env.OPENAI_API_KEY, out.env.AIVAULT_AGENT_TOKEN);
    assert.match(out.env.AIVAULT_AGENT_TOKEN!, /^avt_/);
    assert.equal(out.env.PASSES_THROUGH, 'hello');
    assert.equal(out.env.COPY_OF_CUSTOM, undefined, 'a variable holding a kept (older) version is not passed down');
    assert.equal(out.env.COPY_OF_NEXT, undefined, 'a variable holding a stored secret value is not passed down');
    assert.equal(out.env.AIVAULT_MASTER_KEY, undefined);
    assert.equal(r.stdout.includes(realKey), false);
    assert.equal(r.stdout.includes(custom), false);
    const agents = JSON.parse((await v.cli(['agent', 'list', '--json'])).stdout) as Array<{ name: string; status: string }>;
    const derived = agents.filter((a) => a.name.startsWith('runner.run-'));
    assert.equal(derived.length, 1);
    assert.equal(derived[0]!.status, 'revoked', 'the derived agent is revoked when the child exits');
  });

  it('SIGTERM, SIGINT and SIGHUP to run: passed on to the child, and the derived agent is revoked once it ends', async () => {
    await Promise.all(
      (['SIGTERM', 'SIGINT', 'SIGHUP'] as const).map(async (signal) => {
        const { run, child, stderr } = await runLong();
        assert.equal(await agentStatus(child.token), 200);
        run.kill(signal);
        const [code] = (await once(run, 'exit')) as [number | null];
        assert.equal(code, 128 + constants.signals[signal], `${signal}: ${stderr()}`);
        assert.throws(() => process.kill(child.pid, 0), { code: 'ESRCH' }, `${signal}: the child ended`);
        assert.equal(await agentStatus(child.token), 401, `${signal}: the derived agent is revoked`);
        assert.deepEqual(await invoke(child.token), { status: 401, code: 'AGENT_UNAUTHENTICATED' });
      }),
    );
  });

  it("the end of run's parent ends the child and revokes the derived agent", async () => {
    // run under a shell that is then killed outright: run is left without its parent.
    const { run, child } = await runLong(['--lease', '2'], (argv) => ['/bin/sh', '-c', `${argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')} & wait`]);
    run.kill('SIGKILL');
    const deadline = Date.now() + 8000;
    while ((await agentStatus(child.token)) !== 401 && Date.now() < deadline) await sleep(200);
    assert.equal(await agentStatus(child.token), 401);
    assert.throws(() => process.kill(child.pid, 0), { code: 'ESRCH' }, 'the child ended');
  });

  it('a kill -9 of run leaves the token usable for one lease at most, through a running daemon', async () => {
    const { run, child } = await runLong(['--lease', '2']);
    try {
      assert.deepEqual(await invoke(child.token), { status: 200 });
      await sleep(3000); // longer than the lease: run renews it
      assert.deepEqual(await invoke(child.token), { status: 200 }, 'renewed while run lives');
      run.kill('SIGKILL');
      const killed = Date.now();
      let last = await invoke(child.token);
      while (last.status === 200 && Date.now() - killed < 6000) {
        await sleep(200);
        last = await invoke(child.token);
      }
      assert.deepEqual(last, { status: 403, code: 'GRANT_EXPIRED' });
      assert.ok(Date.now() - killed <= 4000, `the lease ran out ${Date.now() - killed} ms after the kill`);
      assert.deepEqual(await (await fetch(`${d.url}/v1/capabilities`, { headers: { authorization: `Bearer ${child.token}` } })).json(), []);
    } finally {
      process.kill(child.pid, 'SIGKILL');
    }
  });

  it("without --url or AIVAULT_URL, the child gets the running daemon's addresses, from the record serve keeps", async () => {
    const script = `console.log(JSON.stringify(process.env))`;
    const r = await v.cli(['run', '--agent', 'runner', '--', process.execPath, '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    const env = JSON.parse(r.stdout) as Record<string, string>;
    assert.equal(env.AIVAULT_URL, d.url);
    assert.equal(env.AIVAULT_SOCKET, d.socket);
    assert.equal(env.OPENAI_BASE_URL, `${d.url}/gw/openai/v1`);
  });

  it('an explicit --url still wins over the record, and must answer', async () => {
    const r = await v.cli(['run', '--agent', 'runner', '--url', 'http://127.0.0.1:9', '--', process.execPath, '-e', 'console.log("started")']);
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, /DAEMON_UNAVAILABLE: no daemon answers at http:\/\/127\.0\.0\.1:9 \(--url\)/);
    assert.equal(r.stdout, '', 'the command did not start');
  });

  it('--lease takes whole seconds within bounds', async () => {
    await Promise.all(
      ['1', '2.5'].map(async (bad) => {
        const r = await v.cli(['run', '--agent', 'runner', '--lease', bad, '--', 'true']);
        assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
        assert.match(r.stderr, /INVALID_ARGUMENT/);
      }),
    );
  });
});

describe('aivault run with no daemon', () => {
  let v: TempVault;
  before(async () => {
    v = await tempVault();
    assert.equal((await v.cli(['agent', 'create', 'runner'])).code, 0);
  });
  after(() => v.cleanup());

  it('fails fast with DAEMON_UNAVAILABLE, naming the socket, and does not start the command', async () => {
    const r = await v.cli(['run', '--agent', 'runner', '--', process.execPath, '-e', 'console.log("started")']);
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, new RegExp(`DAEMON_UNAVAILABLE: no daemon answers at ${join(v.dir, 'aivault.sock')}: start one with \`aivault serve\``));
    assert.equal(r.stdout, '');
    const agents = JSON.parse((await v.cli(['agent', 'list', '--json'])).stdout) as Array<{ name: string }>;
    assert.deepEqual(agents.map((a) => a.name), ['runner'], 'no derived agent was made');
  });

  it('a record left by a daemon that died is not believed', async () => {
    writeFileSync(join(v.dir, 'daemon.json'), JSON.stringify({ pid: 1, socket: join(v.dir, 'gone.sock'), url: 'http://127.0.0.1:9' }), { mode: 0o600 });
    const r = await v.cli(['run', '--agent', 'runner', '--', process.execPath, '-e', 'console.log("started")']);
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, new RegExp(`no daemon answers at ${join(v.dir, 'aivault.sock')}`));
    rmSync(join(v.dir, 'daemon.json'));
  });
});

describe('aivault run on a PostgreSQL vault: the child gets no credential of the vault, its key, its database or its owner', () => {
  const schema = freshSchema('run');
  const dbPassword = `pw-${randomBytes(9).toString('hex')}`;
  const url = new URL(schemaUrl(schema));
  url.password = dbPassword; // trust auth: the server ignores it, the environment must not pass it on
  const masterKey = randomBytes(32).toString('base64');
  const custom = canary('STORED');
  let v: TempVault;
  let d: RunningDaemon;

  before(async () => {
    v = await tempVault(['--key-provider', 'env', '--storage', url.href], { AIVAULT_MASTER_KEY: masterKey, AIVAULT_DATABASE_URL: url.href });
    for (const args of [['secrets', 'create', '--name', 'SOME_CUSTOM', '--value', custom], ['agent', 'create', 'runner']]) assert.equal((await v.cli(args)).code, 0);
    d = await startDaemon(v, []);
  });
  after(async () => {
    await d.stop();
    v.cleanup();
    await dropSchema(schema);
  });

  it('drops them by name and by value, in every encoding the scrubber knows, and prints only the names', async () => {
    const newKey = randomBytes(32).toString('base64');
    const newPassphrase = canary('NEWPASS');
    const pgPassword = canary('PGPW');
    const percent = [...Buffer.from(custom)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const dropped: Record<string, string> = {
      PGPASSWORD: pgPassword,
      PGPASSFILE: '/home/owner/.pgpass',
      PGSERVICEFILE: '/home/owner/.pg_service.conf',
      PGSSLKEY: '/home/owner/.postgresql/postgresql.key',
      AIVAULT_NEW_MASTER_KEY: newKey,
      AIVAULT_NEW_PASSPHRASE: newPassphrase,
      AIVAULT_OWNER_KEY: '/home/owner/.aivault/owner.key',
      AIVAULT_OWNER_ID: 'owner-1',
      DATABASE_URL: `postgres://someone:${randomBytes(6).toString('hex')}@db.example/app`,
      REDIS_URL: 'redis://:hunter2hunter2@cache.example:6379',
      DB_PASSWORD_COPY: `password=${dbPassword}`,
      MASTER_COPY: masterKey,
      NEW_KEY_COPY: `key ${newKey} here`,
      PASSPHRASE_COPY: newPassphrase.toUpperCase(),
      PG_COPY: `x${pgPassword}y`,
      BEARER: `-H 'Authorization: Bearer ${custom}'`,
      NEWLINE: `${custom}\n`,
      BASE64: Buffer.from(custom).toString('base64'),
      BASE64_EMBEDDED: `token=${Buffer.from(`user:${custom}`).toString('base64url')};`,
      HEX: Buffer.from(custom).toString('hex').toUpperCase(),
      PERCENT: `q=${percent}`,
      JSON_ESCAPED: JSON.stringify({ k: custom }).replace(/-/g, '\\u002d'),
      [`NAME_${custom}`]: '1',
    };
    const passed = { PASSES_THROUGH: 'hello', PGHOST: '127.0.0.1', SOME_URL: 'https://user@example.com/path?x=1', LANG: 'C.UTF-8' };
    const script = `console.log(JSON.stringify(process.env))`;
    const r = await v.cli(['run', '--agent', 'runner', '--', process.execPath, '-e', script], { env: { ...dropped, ...passed } });
    assert.equal(r.code, 0, r.stderr);
    const env = JSON.parse(r.stdout) as Record<string, string>;
    for (const name of Object.keys(dropped)) assert.equal(env[name], undefined, `${name} is not passed on`);
    for (const [name, value] of Object.entries(passed)) assert.equal(env[name], value, `${name} passes`);
    assert.deepEqual(Object.keys(env).filter((k) => k.startsWith('AIVAULT_')).sort(), ['AIVAULT_AGENT_TOKEN', 'AIVAULT_SOCKET']);
    assert.equal(env.AIVAULT_DATABASE_URL, undefined);
    assert.equal(env.AIVAULT_MASTER_KEY, undefined);
    for (const value of [custom, dbPassword, masterKey, newKey, newPassphrase, pgPassword, 'hunter2hunter2']) {
      assert.equal(r.stdout.includes(value), false, 'no credential reaches the child');
      assert.equal(r.stderr.includes(value), false, 'nor the notes');
    }
    for (const name of ['PGPASSWORD', 'AIVAULT_DATABASE_URL', 'AIVAULT_MASTER_KEY', 'BEARER', 'NEWLINE', 'BASE64', 'HEX', 'PERCENT', 'DB_PASSWORD_COPY']) assert.match(r.stderr, new RegExp(`\\b${name}\\b`));
  });
});
