// Owner approvals: an invoke under a grant made with --approve waits in the daemon (its
// own process) until the owner decides from another process; nothing goes upstream first.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { assertNoLeak, canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type Approval = {
  id: string; status: string; agentId: string; capability: string; method: string; host: string; path: string; decidedBy: string | null;
  details: { agentName: string; url: string; headers: Array<[string, string]>; body: { length: number; sha256: string; preview: string } | null; digest: string } | null;
};

describe('owner approvals', () => {
  let v: TempVault;
  let up: Upstream;
  let d: RunningDaemon;
  const key = canary('APPROVE');
  const tokens: Record<string, string> = {};
  const outputs: string[] = [];

  const owner = async (args: string[], expect = 0) => {
    const r = await v.cli(args);
    // `agent create` prints the new token once, by design; every other output must not.
    if (args[0] !== 'agent') outputs.push(r.stdout, r.stderr);
    assert.equal(r.code, expect, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const invoke = async (agent: string, path = '/v1/refunds', extra: { body?: string; query?: Array<[string, string]>; headers?: Array<[string, string]>; socket?: string } = {}) => {
    const r = await request('http://aivault/v1/invoke', {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens[agent]}`, 'content-type': 'application/json' },
      body: JSON.stringify({ capability: 'pay/refunds', method: 'POST', path, body: extra.body ?? '{"amount":5}', ...(extra.query ? { query: extra.query } : {}), ...(extra.headers ? { headers: extra.headers } : {}) }),
      dispatcher: new Agent({ connect: { socketPath: extra.socket ?? d.socket! } }),
    });
    return { status: r.statusCode, error: r.headers['x-aivault-error'], text: await r.body.text() };
  };
  const pending = async (): Promise<Approval[]> => JSON.parse(await owner(['approvals', '--json'])) as Approval[];
  const waitForPending = async (count: number): Promise<Approval[]> => {
    for (let i = 0; i < 100; i++) {
      const list = await pending();
      if (list.length >= count) return list;
      await sleep(100);
    }
    throw new Error('no pending approval appeared');
  };

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    const ref = (await owner(['secrets', 'create', '--name', 'PAY_KEY', '--value', key])).trim();
    await owner(['credential', 'create', 'pay', '--provider', 'pay', '--secret-ref', ref, '--auth', 'header', '--header-name', 'authorization', '--value-template', 'Bearer {{secret}}', '--host', up.host, '--allow-http', '--allow-private-network']);
    await owner(['capability', 'create', 'pay/refunds', '--provider', 'pay', '--credential', 'pay', '--method', 'POST', '--path', '/v1/refunds']);
    for (const [name, mode] of [['careful', 'each'], ['onboarding', 'first']]) {
      tokens[name!] = (JSON.parse(await owner(['agent', 'create', name!, '--json'])) as { token: string }).token;
      await owner(['grant', name!, 'pay/refunds', '--approve', mode!]);
    }
    // Long enough for the owner's CLI to answer on a loaded machine; the timeout test has its own daemon.
    d = await startDaemon(v, ['--socket', join(v.dir, 'a.sock'), '--approval-timeout', '30', '--approval-command', `cat > "${v.dir}/notified-$AIVAULT_APPROVAL_ID.json"`]);
  });
  after(async () => {
    await d.stop();
    await up.close();
    for (const o of [...outputs, d.log()]) {
      assertNoLeak(o, key, 'approvals output');
      for (const t of Object.values(tokens)) assertNoLeak(o, t, 'approvals output');
    }
    v.cleanup();
  });

  it('each: the invoke waits, nothing goes upstream until the owner approves from another process; audited with the approver', async () => {
    const before = up.received.length;
    const call = invoke('careful');
    const [waiting] = await waitForPending(1);
    assert.equal(up.received.length, before, 'nothing upstream while waiting');
    assert.deepEqual({ ...waiting!, id: 'x', agentId: 'x' }, { ...waiting!, id: 'x', agentId: 'x', status: 'pending', capability: 'pay/refunds', method: 'POST', host: '127.0.0.1', path: '/v1/refunds' });
    // The notification command got the approval, and nothing secret.
    const note = join(v.dir, `notified-${waiting!.id}.json`);
    for (let i = 0; i < 50 && !existsSync(note); i++) await sleep(50);
    const notified = readFileSync(note, 'utf8');
    assert.equal((JSON.parse(notified) as Approval).id, waiting!.id);
    assertNoLeak(notified, key, 'notification');
    assertNoLeak(notified, tokens.careful!, 'notification');

    assert.match(await owner(['approvals', 'approve', waiting!.id]), new RegExp(`^approved ${waiting!.id}: POST`));
    const r = await call;
    assert.equal(r.status, 200, r.text);
    assert.equal(up.received.length, before + 1);
    assert.equal(up.received.at(-1)!.headers.authorization, `Bearer ${key}`);

    const audit = JSON.parse(await owner(['audit', 'list', '--json'])) as Array<{ action: string; actor: string; decision: string; reason: string | null; target: string | null }>;
    assert.ok(audit.some((a) => a.action === 'approval.approve' && a.actor === 'owner:local' && a.target?.startsWith(`approval:${waiting!.id} `)));
    assert.ok(audit.some((a) => a.action === 'invoke' && a.decision === 'allow' && a.reason === `approved ${waiting!.id} by owner:local`));
    // Each: the next invoke waits again.
    const next = invoke('careful');
    const [again] = await waitForPending(1);
    assert.notEqual(again!.id, waiting!.id);
    await owner(['approvals', 'deny', again!.id]);
    const denied = await next;
    assert.deepEqual([denied.status, denied.error], [403, 'APPROVAL_DENIED']);
    assert.equal(up.received.length, before + 1, 'a denied invoke never left');
  });

  it('no decision in time: APPROVAL_TIMEOUT, the approval expires, and a late approval is refused', async () => {
    const hasty = await startDaemon(v, ['--socket', join(v.dir, 't.sock'), '--approval-timeout', '2']);
    const before = up.received.length;
    const started = Date.now();
    const r = await invoke('careful', '/v1/refunds', { socket: hasty.socket! }).finally(() => hasty.stop());
    assert.deepEqual([r.status, r.error], [403, 'APPROVAL_TIMEOUT']);
    assert.ok(Date.now() - started >= 1900, 'waited for the configured timeout');
    assert.equal(up.received.length, before);
    const expired = (JSON.parse(await owner(['approvals', '--all', '--json'])) as Approval[]).filter((a) => a.status === 'expired');
    assert.equal(expired.length, 1);
    const late = await v.cli(['approvals', 'approve', expired[0]!.id, '--json']);
    assert.equal(late.code, 4);
    assert.equal((JSON.parse(late.stderr) as { error: { code: string } }).error.code, 'APPROVAL_NOT_PENDING');
    const unknown = await v.cli(['approvals', 'deny', 'apr_nope', '--json']);
    assert.equal(unknown.code, 3);
  });

  it('first: only the first invoke waits; later ones go straight through', async () => {
    const before = up.received.length;
    const call = invoke('onboarding');
    const [waiting] = await waitForPending(1);
    await owner(['approvals', 'approve', waiting!.id]);
    assert.equal((await call).status, 200);
    const second = await invoke('onboarding');
    assert.equal(second.status, 200);
    assert.equal((await pending()).length, 0);
    assert.equal(up.received.length, before + 2);
    assert.equal((await v.cli(['audit', 'verify'])).code, 0);
  });

  it('an approval shows exactly what would be sent, and what is approved is what is sent', async () => {
    const before = up.received.length;
    // A second daemon on the same vault, with time enough to decide under load.
    const patient = await startDaemon(v, ['--socket', join(v.dir, 'b.sock'), '--approval-timeout', '60']);
    const socket = patient.socket!;
    const small = invoke('careful', '/v1/refunds', { body: '{"amount":5}', query: [['order', '17']], headers: [['x-reason', 'duplicate charge']], socket });
    const large = invoke('careful', '/v1/refunds', { body: '{"amount":999999}', query: [['order', '18']], headers: [['x-reason', 'duplicate charge']], socket });
    const list = await waitForPending(2);
    const first = list.find((a) => a.details!.url.endsWith('order=17'));
    const second = list.find((a) => a.details!.url.endsWith('order=18'))!;
    for (const [a, amount, order] of [[first!, '5', '17'], [second, '999999', '18']] as const) {
      assert.equal(a.details!.agentName, 'careful');
      assert.equal(a.details!.url, `http://${up.host}/v1/refunds?order=${order}`);
      assert.deepEqual(a.details!.headers.find(([k]) => k === 'x-reason'), ['x-reason', 'duplicate charge']);
      assert.equal(a.details!.body!.preview, `{"amount":${amount}}`);
      assert.equal(a.details!.body!.length, `{"amount":${amount}}`.length);
      assert.match(a.details!.digest, /^[0-9a-f]{64}$/);
    }
    assert.notEqual(first!.details!.digest, second.details!.digest);

    // Someone rewrites what the owner is shown (the stored record): approving it sends nothing.
    const db = new DatabaseSync(join(v.dir, 'vault.db'));
    const forged = { ...second.details!, body: { ...second.details!.body!, preview: '{"amount":1}' }, digest: 'f'.repeat(64) };
    db.prepare('UPDATE approvals SET details = ? WHERE id = ?').run(JSON.stringify(forged), second.id);
    db.close();
    await owner(['approvals', 'approve', second.id]);
    const refused = await large;
    assert.deepEqual([refused.status, refused.error], [403, 'APPROVAL_DENIED']);
    assert.match(refused.text, /not the one waiting/);
    await owner(['approvals', 'approve', first!.id]);
    assert.equal((await small).status, 200);
    assert.equal(up.received.length, before + 1, 'only the approved request, exactly as shown, was sent');
    assert.equal(up.received.at(-1)!.url, '/v1/refunds?order=17');
    assert.equal(up.received.at(-1)!.body.toString(), '{"amount":5}');
    // The owner's plain listing shows it all, the agent's text escaped.
    const shown = await owner(['approvals', '--all']);
    assert.match(shown, /careful/);
    assert.match(shown, /\{\\"amount\\":5\}/);
    assert.match(shown, /order=17/);
    await patient.stop();
  });

  it('a grant takes only each or first', async () => {
    const r = await v.cli(['grant', 'careful', 'pay/refunds', '--approve', 'sometimes', '--json']);
    assert.equal(r.code, 2);
    assert.equal((JSON.parse(r.stderr) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
  });
});
