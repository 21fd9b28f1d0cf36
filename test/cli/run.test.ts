// `aivault run`: an unmodified child process as an agent, with no secret in its environment.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

describe('aivault run', () => {
  let v: TempVault;
  let d: RunningDaemon;
  const realKey = canary('sk-run');
  const custom = canary('CUSTOM');

  before(async () => {
    v = await tempVault();
    for (const args of [
      ['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', realKey],
      ['secrets', 'create', '--name', 'SOME_CUSTOM', '--value', custom],
      ['agent', 'create', 'runner'],
      ['grant', 'runner', 'openai/chat-completions'],
    ]) assert.equal((await v.cli(args)).code, 0);
    d = await startDaemon(v, ['--listen', '127.0.0.1:0']);
  });
  after(async () => {
    await d.stop();
    v.cleanup();
  });

  it('gives the child a working derived agent token and gateway URLs, and strips every secret from its environment', async () => {
    const script = `
      const caps = await fetch(process.env.AIVAULT_URL + '/v1/capabilities', { headers: { authorization: 'Bearer ' + process.env.AIVAULT_AGENT_TOKEN } });
      console.log(JSON.stringify({ env: process.env, capabilities: (await caps.json()).map((c) => c.id) }));
      process.exit(3);`;
    const r = await v.cli(['run', '--agent', 'runner', '--url', d.url!, '--', process.execPath, '--input-type=module', '-e', script], {
      env: { OPENAI_API_KEY: realKey, PASSES_THROUGH: 'hello', COPY_OF_CUSTOM: custom, AIVAULT_MASTER_KEY: 'owner-key-material' },
    });
    assert.equal(r.code, 3, r.stderr);
    const out = JSON.parse(r.stdout) as { env: Record<string, string>; capabilities: string[] };
    assert.deepEqual(out.capabilities, ['openai/chat-completions']);
    assert.equal(out.env.OPENAI_BASE_URL, `${d.url}/gw/openai/v1`);
    assert.equal(out.env.OPENAI_API_KEY, out.env.AIVAULT_AGENT_TOKEN);
    assert.match(out.env.AIVAULT_AGENT_TOKEN!, /^avt_/);
    assert.equal(out.env.PASSES_THROUGH, 'hello');
    assert.equal(out.env.COPY_OF_CUSTOM, undefined, 'a variable holding a stored secret value is not passed down');
    assert.equal(out.env.AIVAULT_MASTER_KEY, undefined);
    assert.equal(r.stdout.includes(realKey), false);
    assert.equal(r.stdout.includes(custom), false);
    const agents = JSON.parse((await v.cli(['agent', 'list', '--json'])).stdout) as Array<{ name: string; status: string }>;
    const derived = agents.filter((a) => a.name.startsWith('runner.run-'));
    assert.equal(derived.length, 1);
    assert.equal(derived[0]!.status, 'revoked', 'the derived agent is revoked when the child exits');
  });
});
