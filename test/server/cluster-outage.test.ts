// The database goes away under load, and comes back: every replica fails closed with
// STORAGE_UNAVAILABLE meanwhile (nothing goes upstream unaudited), then recovers on its
// own, and the audit chain is whole. Runs on a PostgreSQL server of its own, so stopping
// it does not disturb other tests.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { post, startCluster, type Answer, type Cluster } from '../helpers/cluster.ts';
import { privatePostgresUnavailable, startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const unavailable = privatePostgresUnavailable();

describe('a cluster through a database restart', { skip: unavailable }, () => {
  let pg: PrivatePostgres;
  let c: Cluster;
  let up: Upstream;
  let token: string;

  before(async () => {
    pg = await startPrivatePostgres();
    up = await startUpstream();
    c = await startCluster(pg.url, 2);
    const ref = (await c.owner(['secrets', 'create', '--name', 'OUTAGE_KEY', '--value', 'outage-key-0123456789'])).trim();
    await c.owner(['credential', 'create', 'api', '--provider', 'api', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', up.host, '--allow-http', '--allow-private-network']);
    await c.owner(['capability', 'create', 'api/data', '--provider', 'api', '--credential', 'api', '--method', 'GET', '--path', '/v1']);
    token = (JSON.parse(await c.owner(['agent', 'create', 'bot', '--json'])) as { token: string }).token;
    await c.owner(['grant', 'bot', 'api/data']);
  });
  after(async () => {
    await c?.stop();
    await up?.close();
    pg?.destroy();
  });

  it('fails closed while the server is down and recovers by itself', async () => {
    const answers: Array<Answer & { phase: string }> = [];
    let phase = 'before';
    let stop = false;
    const worker = async (replica: number) => {
      while (!stop) {
        const r = await post(c.replicas[replica]!, '/v1/invoke', { authorization: `Bearer ${token}` }, '{"capability":"api/data","method":"GET","path":"/v1/x"}').catch((e: Error) => ({ status: 0, error: e.message, text: '' }));
        answers.push({ ...r, phase });
        if (phase === 'down') await sleep(20);
      }
    };
    const workers = [0, 1, 0, 1].map(worker);
    // Enough load before the outage, however slow the machine.
    for (let i = 0; i < 100 && answers.filter((a) => a.phase === 'before').length <= 10; i++) await sleep(100);
    phase = 'down';
    pg.stop('fast');
    const upstreamAtStop = up.received.length;
    await sleep(2000);
    const upstreamDuringOutage = up.received.length - upstreamAtStop;
    phase = 'restarting';
    pg.start();
    await sleep(2500);
    phase = 'after';
    await sleep(1000);
    stop = true;
    await Promise.all(workers);

    const by = (p: string) => answers.filter((a) => a.phase === p);
    assert.ok(by('before').length > 10 && by('before').every((a) => a.status === 200), 'load ran before the outage');
    const down = by('down');
    assert.ok(down.length > 10, 'load kept coming during the outage');
    // Requests in flight at the instant of the stop may still finish; after that, only refusals.
    const refused = down.filter((a) => a.status !== 200);
    assert.ok(refused.length >= down.length - 8, `at most the in-flight requests succeed (${down.length - refused.length})`);
    const logs = () => c.replicas.map((r, i) => `replica ${i} (exit ${r.process.exitCode}): ${r.log().slice(-2000)}`).join('\n');
    assert.deepEqual([...new Set(refused.map((a) => `${a.status} ${a.error}`))], ['503 STORAGE_UNAVAILABLE'], logs());
    assert.ok(upstreamDuringOutage <= 8, `nothing goes upstream without its audit record (${upstreamDuringOutage})`);
    const recovered = by('after');
    assert.ok(recovered.length > 10 && recovered.every((a) => a.status === 200), `both replicas recovered without a restart: ${JSON.stringify([...new Set(recovered.map((a) => a.error))])}`);

    const verify = JSON.parse(await c.owner(['audit', 'verify', '--json'])) as { ok: boolean; count: number };
    assert.equal(verify.ok, true);
    const allowed = (JSON.parse(await c.owner(['audit', 'list', '--json', '--limit', '1000000'])) as Array<{ action: string; decision: string }>).filter((r) => r.action === 'invoke' && r.decision === 'allow').length;
    assert.ok(allowed >= up.received.length, `every request that reached the upstream (${up.received.length}) has its allow record (${allowed})`);
  });
});
