// `aivault secrets validate`: the provider's declared check, sent to a stand-in through an
// endpoint override; only a verdict comes back, never the key or the response.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertNoLeak, canary, recorder, tempVault, type TempVault } from '../helpers/cli.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('aivault secrets validate', () => {
  let v: TempVault;
  let up: Upstream;
  const good = canary('GOODKEY');
  const slackGood = canary('SLACKGOOD');
  const { run, outputs } = recorder(() => v);

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    // The stand-in accepts exactly one key, and echoes whatever it got (so scrubbing matters).
    up.handle('/v1/models', (req, res) => {
      res.statusCode = req.headers.authorization === `Bearer ${good}` ? 200 : req.headers.authorization === 'Bearer rate-limited-key' ? 429 : 401;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ seen: req.headers.authorization }));
    });
    up.handle('/api/auth.test', (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(req.headers.authorization === `Bearer ${slackGood}` ? { ok: true } : { ok: false, error: 'invalid_auth', seen: req.headers.authorization }));
    });
    for (const [provider, host] of [['openai', 'api.openai.com'], ['slack', 'slack.com']]) {
      const r = await run(['endpoint', 'set', provider!, '--map', `${host}=${up.host}`, '--allow-http', '--allow-private-network']);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await up.close();
    for (const o of outputs) {
      assertNoLeak(o, good, 'validate output');
      assertNoLeak(o, slackGood, 'validate output');
    }
    v.cleanup();
  });

  it('valid: the provider accepts the key (exit 0), and the check went where the registry says', async () => {
    assert.equal((await run(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', good])).code, 0);
    const r = await run(['secrets', 'validate', 'OPENAI_API_KEY', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { name: 'OPENAI_API_KEY', scope: 'global', provider: 'openai', verdict: 'valid', reason: 'HTTP_200', capability: 'openai/models', status: 200 });
    const last = up.received.at(-1)!;
    assert.equal(`${last.method} ${last.url}`, 'GET /v1/models');
  });

  it('invalid after a rotation to a bad key (exit 8); indeterminate on 429 (exit 9)', async () => {
    await run(['secrets', 'rotate', 'OPENAI_API_KEY', '--value', canary('BADKEY')]);
    const bad = await run(['secrets', 'validate', 'OPENAI_API_KEY']);
    assert.equal(bad.code, 8);
    assert.equal(bad.stdout.trim(), 'OPENAI_API_KEY: invalid (HTTP_401 via openai/models)');
    await run(['secrets', 'rotate', 'OPENAI_API_KEY', '--value', 'rate-limited-key']);
    const limited = await run(['secrets', 'validate', 'OPENAI_API_KEY', '--json']);
    assert.equal(limited.code, 9);
    assert.equal((JSON.parse(limited.stdout) as { verdict: string }).verdict, 'indeterminate');
  });

  it('Slack answers 200 to a bad token: the declared ok field decides', async () => {
    await run(['secrets', 'create', '--name', 'SLACK_BOT_TOKEN', '--value', canary('SLACKBAD')]);
    const bad = await run(['secrets', 'validate', 'SLACK_BOT_TOKEN', '--json']);
    assert.equal(bad.code, 8, bad.stderr);
    assert.deepEqual(JSON.parse(bad.stdout), { name: 'SLACK_BOT_TOKEN', scope: 'global', provider: 'slack', verdict: 'invalid', reason: 'OK_FALSE', capability: 'slack/auth-test', status: 200 });
    await run(['secrets', 'rotate', 'SLACK_BOT_TOKEN', '--value', slackGood]);
    const ok = await run(['secrets', 'validate', 'SLACK_BOT_TOKEN']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(up.received.at(-1)!.method, 'POST');
  });

  it('an unreachable provider is indeterminate, never valid', async () => {
    await run(['secrets', 'rotate', 'OPENAI_API_KEY', '--value', good]);
    await run(['endpoint', 'set', 'openai', '--map', 'api.openai.com=127.0.0.1:1', '--allow-http', '--allow-private-network']);
    const r = await run(['secrets', 'validate', 'OPENAI_API_KEY', '--json']);
    assert.equal(r.code, 9);
    const result = JSON.parse(r.stdout) as { verdict: string; reason: string };
    assert.deepEqual([result.verdict, result.reason], ['indeterminate', 'UPSTREAM_UNREACHABLE']);
  });

  it('a custom secret has no provider check; a provider without one is indeterminate; every run is audited', async () => {
    await run(['secrets', 'create', '--name', 'MY_OWN', '--value', canary('OWN')]);
    const custom = await run(['secrets', 'validate', 'MY_OWN', '--json']);
    assert.equal(custom.code, 2);
    assert.equal((JSON.parse(custom.stderr) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
    await run(['secrets', 'create', '--name', 'SENDGRID_API_KEY', '--value', canary('SG')]);
    const none = await run(['secrets', 'validate', 'SENDGRID_API_KEY', '--json']);
    assert.equal(none.code, 9);
    assert.equal((JSON.parse(none.stdout) as { reason: string }).reason, 'NO_CHECK_DECLARED');
    const audit = await run(['audit', 'list', '--json']);
    const records = (JSON.parse(audit.stdout) as Array<{ action: string; reason: string | null }>).filter((r) => r.action === 'secret.validate');
    assert.ok(records.some((r) => r.reason === 'valid:HTTP_200'));
    assert.ok(records.some((r) => r.reason === 'invalid:OK_FALSE'));
    assert.ok(records.some((r) => r.reason === 'indeterminate:NO_CHECK_DECLARED'));
    assert.equal((await run(['audit', 'verify'])).code, 0);
  });
});
