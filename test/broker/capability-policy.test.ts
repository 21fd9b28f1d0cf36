// `aivault capability policy …`: the owner's rate, body caps and response block list on one
// capability, enforced for every caller, across processes (each invoke here is its own
// CLI process), against a loopback upstream.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type Err = { error: { code: string } };

describe('capability policy', () => {
  let v: TempVault;
  let up: Upstream;
  const ok = async (args: string[]) => {
    const r = await v.cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const invoke = (capability: string, path: string, extra: string[] = []) => v.cli(['invoke', capability, '--path', path, '--json', ...extra]);

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    up.handle('/v1/big', (_req, res) => void res.end('x'.repeat(500)));
    up.handle('/v1/small', (_req, res) => void res.end('ok'));
    up.handle('/v1/leaky', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ host: 'db1.internal-acme.net', note: 'ok' }));
    });
    const ref = (await ok(['secrets', 'create', '--name', 'POLICY_KEY', '--value', canary('POLICY')])).trim();
    await ok(['credential', 'create', 'notes', '--provider', 'notes', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', up.host, '--allow-http', '--allow-private-network']);
    await ok(['capability', 'create', 'notes/read', '--provider', 'notes', '--credential', 'notes', '--method', 'GET', '--method', 'POST', '--path', '/v1']);
  });
  after(async () => {
    await up.close();
    v.cleanup();
  });

  it('a rate for the whole capability holds across processes', async () => {
    await ok(['capability', 'policy', 'set', 'notes/read', '--rate-limit-per-minute', '3']);
    const before = up.received.length;
    const results = await Promise.all(Array.from({ length: 5 }, () => invoke('notes/read', '/v1/notes')));
    assert.equal(results.filter((r) => r.code === 0).length, 3);
    const refused = results.filter((r) => r.code !== 0);
    assert.deepEqual(refused.map((r) => [r.code, (JSON.parse(r.stderr) as Err).error.code]), [[7, 'RATE_LIMITED'], [7, 'RATE_LIMITED']]);
    assert.equal(up.received.length, before + 3, 'refused invokes never went upstream');
    await ok(['capability', 'policy', 'set', 'notes/read', '--rate-limit-per-minute', '1000']);
  });

  it('body caps: a large request is refused before it leaves, a large response fails', async () => {
    await ok(['capability', 'policy', 'set', 'notes/read', '--max-request-body-bytes', '16', '--max-response-body-bytes', '100']);
    const before = up.received.length;
    const big = await invoke('notes/read', '/v1/notes', ['--method', 'POST', '--body', 'y'.repeat(17)]);
    assert.equal((JSON.parse(big.stderr) as Err).error.code, 'REQUEST_TOO_LARGE');
    assert.equal(up.received.length, before);
    const fits = await invoke('notes/read', '/v1/small', ['--method', 'POST', '--body', 'y'.repeat(16)]);
    assert.equal(fits.code, 0, fits.stderr);
    const large = await invoke('notes/read', '/v1/big');
    assert.equal((JSON.parse(large.stderr) as Err).error.code, 'RESPONSE_TOO_LARGE');
  });

  it('the block list redacts literal strings in responses; other fields keep their value', async () => {
    const leaky = JSON.parse(await ok(['invoke', 'notes/read', '--path', '/v1/leaky', '--json'])) as { body: string };
    assert.match(leaky.body, /db1\.internal-acme\.net/);
    await ok(['capability', 'policy', 'set', 'notes/read', '--response-block', 'internal-acme.net']);
    const blocked = JSON.parse(await ok(['invoke', 'notes/read', '--path', '/v1/leaky', '--json'])) as { body: string };
    assert.deepEqual(JSON.parse(blocked.body), { host: 'db1.[REDACTED]', note: 'ok' });
  });

  it('describe shows it; set merges; clear removes it; every change is audited', async () => {
    const described = JSON.parse(await ok(['capability', 'describe', 'notes/read', '--json'])) as { policy: Record<string, unknown>; limits: { maxRequestBytes: number } };
    assert.deepEqual({ ...described.policy, updatedAt: 'x' }, { rateLimitPerMinute: 1000, maxRequestBodyBytes: 16, maxResponseBodyBytes: 100, responseBlock: ['internal-acme.net'], updatedAt: 'x' });
    assert.equal(described.limits.maxRequestBytes, 16);
    await ok(['capability', 'policy', 'clear', 'notes/read']);
    assert.equal((JSON.parse(await ok(['capability', 'describe', 'notes/read', '--json'])) as { policy: unknown }).policy, null);
    assert.equal((await invoke('notes/read', '/v1/big')).code, 0, 'the caps are gone with the policy');
    const audit = JSON.parse(await ok(['audit', 'list', '--json'])) as Array<{ action: string }>;
    assert.equal(audit.filter((a) => a.action === 'capability.policy.set').length, 4);
    assert.equal(audit.filter((a) => a.action === 'capability.policy.clear').length, 1);
  });

  it('built-in capabilities take a policy too; bad input is refused with its code', async () => {
    const set = JSON.parse(await ok(['capability', 'policy', 'set', 'openai/chat-completions', '--rate-limit-per-minute', '30', '--json'])) as { rateLimitPerMinute: number };
    assert.equal(set.rateLimitPerMinute, 30);
    const cases: Array<[string[], number, string]> = [
      [['capability', 'policy', 'set', 'nope/none', '--rate-limit-per-minute', '3'], 3, 'CAPABILITY_NOT_FOUND'],
      [['capability', 'policy', 'set', 'notes/read', '--response-block', 'abc'], 2, 'INVALID_ARGUMENT'],
      [['capability', 'policy', 'set', 'notes/read', '--rate-limit-per-minute', '0'], 2, 'INVALID_ARGUMENT'],
      [['capability', 'policy', 'set', 'notes/read', '--max-request-body-bytes', '-5'], 2, 'INVALID_ARGUMENT'],
      [['capability', 'policy', 'set', 'notes/read'], 2, 'INVALID_ARGUMENT'],
    ];
    for (const [args, code, error] of cases) {
      const r = await v.cli([...args, '--json']);
      assert.deepEqual([r.code, (JSON.parse(r.stderr) as Err).error.code], [code, error], args.join(' '));
    }
  });
});
