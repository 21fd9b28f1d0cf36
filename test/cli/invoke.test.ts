import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNoLeak, canary, readAllFiles, tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('the custom-provider flow of the aivault docs, through the CLI', () => {
  let v: TempVault;
  let up: Upstream;
  const key = canary('DOCS');
  const outputs: string[] = [];
  const cli = async (args: string[], input?: string): Promise<CliResult> => {
    const r = await v.cli(args, input !== undefined ? { input } : {});
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
  });
  after(async () => {
    v.cleanup();
    await up.close();
  });

  it('secrets create → credential create → capability create → invoke', async () => {
    const created = await cli(['secrets', 'create', '--name', 'MY_CUSTOM_KEY', '--value', key, '--scope', 'global']);
    assert.equal(created.code, 0, created.stderr);
    const ref = created.stdout.trim();
    const cred = await cli(['credential', 'create', 'my-api', '--provider', 'my-api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network']);
    assert.equal(cred.code, 0, cred.stderr);
    const cap = await cli(['capability', 'create', 'my-api/users', '--provider', 'my-api', '--credential', 'my-api', '--method', 'GET', '--method', 'POST', '--path', '/v1/users', '--host', up.host]);
    assert.equal(cap.code, 0, cap.stderr);

    const r = await cli(['invoke', 'my-api/users', '--method', 'GET']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).url, '/v1/users');
    assert.equal(up.received.at(-1)!.headers.authorization, `Bearer ${key}`);
  });

  it('--json prints status, headers and body; bodies come from --body-file', async () => {
    const file = join(v.dir, '..', 'body.json');
    writeFileSync(file, '{"name":"ada"}');
    const r = await cli(['invoke', 'my-api/users', '--method', 'POST', '--path', '/v1/users/7', '--query', 'q=a b', '--header', 'Content-Type: application/json', '--body-file', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { status: number; headers: Record<string, string>; body: string; bodyEncoding: string };
    assert.equal(out.status, 200);
    assert.equal(out.headers['content-type'], 'application/json');
    assert.equal(out.bodyEncoding, 'utf8');
    const echoed = JSON.parse(out.body) as { url: string; body: string; headers: Record<string, string> };
    assert.equal(echoed.url, '/v1/users/7?q=a+b');
    assert.equal(echoed.body, '{"name":"ada"}');
    assert.equal(echoed.headers.authorization, '[REDACTED]', 'the echoed credential is scrubbed');
  });

  it('an upstream 4xx exits 10 and a 5xx exits 11, the answer printed either way; below 400 exits 0', async () => {
    up.handle('/v1/users/status', (req, res) => {
      res.statusCode = Number(new URL(req.url!, 'http://x').pathname.split('/').pop());
      res.setHeader('content-type', 'application/json');
      res.end('{"said":"no"}');
    });
    const cases: Array<[string[], number, number]> = [[['invoke'], 401, 10], [['invoke'], 500, 11], [['invoke'], 204, 0], [['invoke', '--json'], 503, 11], [['invoke', '--stream'], 404, 10], [['json'], 500, 11]];
    await Promise.all(cases.map(async ([command, status, exit]) => {
      const r = await cli([...command, 'my-api/users', '--path', `/v1/users/status/${status}`]);
      assert.equal(r.code, exit, `${command.join(' ')} ${status}: ${r.stderr}`);
      if (status !== 204) assert.match(r.stdout, /said/, 'the answer is printed');
    }));
  });

  it('denials print a stable reason code and exit 7 without reaching the upstream', async () => {
    const before = up.received.length;
    const cases: Array<[string[], string]> = [
      [['invoke', 'my-api/users', '--method', 'DELETE', '--json'], 'METHOD_NOT_ALLOWED'],
      [['invoke', 'my-api/users', '--path', '/v1/users-admin', '--json'], 'PATH_NOT_ALLOWED'],
      [['invoke', 'my-api/users', '--path', '/v1/users/%2e%2e/admin', '--json'], 'MALFORMED_PATH'],
      [['invoke', 'my-api/users', '--url', `http://127.0.0.2:${up.port}/v1/users`, '--json'], 'HOST_NOT_ALLOWED'],
      [['invoke', 'my-api/users', '--header', 'X-Bad: a\rb', '--json'], 'MALFORMED_HEADER'],
    ];
    for (const [args, code] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 7, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stderr).error.code, code);
    }
    const missing = await cli(['invoke', 'nope/none', '--json']);
    assert.equal(JSON.parse(missing.stderr).error.code, 'CAPABILITY_NOT_FOUND');
    assert.equal(up.received.length, before);
  });

  it('lists, describes and deletes credentials and capabilities', async () => {
    const caps = JSON.parse((await cli(['capability', 'list', '--json'])).stdout) as Array<{ id: string; source: string; ready: boolean }>;
    assert.deepEqual(caps.map((c) => [c.id, c.source, c.ready]), [['my-api/users', 'custom', true]]);
    const cred = JSON.parse((await cli(['credential', 'describe', 'my-api', '--json'])).stdout) as { auth: string; allowHttp: boolean };
    assert.deepEqual([cred.auth, cred.allowHttp], ['header', true]);
    const inUse = await cli(['credential', 'delete', 'my-api', '--json']);
    assert.equal(JSON.parse(inUse.stderr).error.code, 'CREDENTIAL_IN_USE');
    assert.equal((await cli(['capability', 'delete', 'my-api/users'])).code, 0);
    assert.equal((await cli(['credential', 'delete', 'my-api'])).code, 0);
    assert.equal(JSON.parse((await cli(['invoke', 'my-api/users', '--json'])).stderr).error.code, 'CAPABILITY_NOT_FOUND');
  });

  it('refuses to bind a pinned secret to a custom credential, or to shadow a built-in provider', async () => {
    const pinned = (await cli(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', canary()])).stdout.trim();
    const steal = await cli(['credential', 'create', 'steal', '--provider', 'steal', '--secret-ref', pinned, '--auth', 'header', '--header-name', 'x-key', '--host', 'evil.example.com', '--json']);
    assert.equal(JSON.parse(steal.stderr).error.code, 'SECRET_PINNED');
    const shadow = await cli(['credential', 'create', 'openai', '--provider', 'openai', '--secret-ref', pinned, '--auth', 'header', '--header-name', 'x-key', '--host', 'evil.example.com', '--json']);
    assert.equal(JSON.parse(shadow.stderr).error.code, 'PROVIDER_RESERVED');
    const unbound = await cli(['credential', 'create', 'x', '--provider', 'x', '--secret-ref', pinned, '--auth', 'header', '--header-name', 'x-key', '--value-template', '{{token}}', '--host', 'x.example.com', '--json']);
    assert.equal(JSON.parse(unbound.stderr).error.code, 'INVALID_ARGUMENT');
  });

  it('audit list shows the decisions, audit verify passes, audit export writes JSON lines', async () => {
    const list = JSON.parse((await cli(['audit', 'list', '--capability', 'my-api/users', '--json'])).stdout) as Array<{ decision: string; reason: string | null }>;
    assert.ok(list.some((r) => r.decision === 'allow'));
    assert.ok(list.some((r) => r.reason === 'PATH_NOT_ALLOWED'));
    const verify = await cli(['audit', 'verify']);
    assert.equal(verify.code, 0, verify.stderr);
    const lines = (await cli(['audit', 'export', '--format', 'jsonl'])).stdout.trim().split('\n');
    assert.ok(lines.length >= 10);
    assert.ok(lines.every((l) => typeof (JSON.parse(l) as { hash: string }).hash === 'string'));
  });

  it('the canary never appears in any output, nor in the vault files', () => {
    for (const out of outputs) assertNoLeak(out, key, 'CLI output');
    for (const [path, bytes] of readAllFiles(v.dir)) assertNoLeak(bytes, key, path);
  });
});
