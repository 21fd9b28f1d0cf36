// Flows from the CLI and through the daemon, as an agent would run them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { assertNoLeak, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('aivault flow (CLI and daemon)', () => {
  let v: TempVault;
  let up: Upstream;
  let d: RunningDaemon;
  let token: string;
  const issued: string[] = [];

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    up.handle('/token', (_req, res) => {
      const t = `at-${randomBytes(10).toString('hex')}`;
      issued.push(t);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ access_token: t, token_type: 'Bearer', expires_in: 60 }));
    });
    const ok = async (args: string[]) => {
      const r = await v.cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await ok(['flow', 'create', 'issuer/token', '--mode', 'acquire_secret', '--target', `http://${up.host}/token`, '--kind', 'oauth_token_response.access_token', '--store-alias', 'ISSUED_TOKEN', '--overwrite', '--allow-http', '--allow-private-network']);
    token = (JSON.parse(await ok(['agent', 'create', 'flow-agent', '--json'])) as { token: string }).token;
    await ok(['grant', 'flow-agent', 'issuer/token']);
    await ok(['flow', 'create', 'issuer/other', '--mode', 'acquire_secret', '--target', `http://${up.host}/token`, '--kind', 'oauth_token_response.access_token', '--store-alias', 'OTHER_TOKEN', '--overwrite', '--allow-http', '--allow-private-network']);
    d = await startDaemon(v, ['--socket', join(v.dir, 'f.sock')]);
  });
  after(async () => {
    await d.stop();
    await up.close();
    v.cleanup();
  });

  it('an agent runs the flow with the CLI through the daemon and sees only the shape', async () => {
    const r = await v.cli(['flow', 'run', 'issuer/token', '--body', 'code=xyz', '--content-type', 'application/x-www-form-urlencoded', '--json'], { env: { AIVAULT_SOCKET: d.socket!, AIVAULT_AGENT_TOKEN: token } });
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { alias: string; status: string; responseShape: Record<string, unknown> };
    assert.deepEqual([result.alias, result.status], ['ISSUED_TOKEN', 'stored']);
    assert.deepEqual(result.responseShape, { access_token: 'string', token_type: 'Bearer', expires_in: 60 });
    for (const value of issued) assertNoLeak(r.stdout + r.stderr, value, 'agent CLI output');
    assert.equal(up.received.at(-1)!.body.toString(), 'code=xyz');
  });

  it('the SDK runs it too; the stored secret rotates', async () => {
    const c = createAgentClient({ socketPath: d.socket!, token });
    try {
      const result = await c.runFlow('issuer/token');
      assert.equal(result.status, 'stored');
      for (const value of issued) assertNoLeak(JSON.stringify(result), value, 'SDK result');
    } finally {
      await c.close();
    }
    const described = JSON.parse((await v.cli(['secrets', 'describe', 'ISSUED_TOKEN', '--json'])).stdout) as { currentVersion: number };
    assert.equal(described.currentVersion, 2);
  });

  it('an agent cannot tell an unknown flow from one it was not granted', async () => {
    const dispatcher = new Agent({ connect: { socketPath: d.socket! } });
    const answer = async (flow: string) => {
      const res = await request('http://aivault/v1/flows/run', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ flow }), dispatcher });
      const body = await res.body.text();
      return { status: res.statusCode, body: body.replaceAll(flow, 'FLOW') };
    };
    try {
      const ungranted = await answer('issuer/other');
      const unknown = await answer('issuer/nope1');
      assert.equal(ungranted.status, 403);
      assert.deepEqual(unknown, ungranted);
    } finally {
      await dispatcher.close();
    }
  });
});
