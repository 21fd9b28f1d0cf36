import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CLI, assertNoLeak, canary, tempVault, type TempVault } from '../helpers/cli.ts';

describe('secrets ingest', () => {
  let v: TempVault;
  before(async () => {
    v = await tempVault();
  });
  after(() => v.cleanup());

  it('accepts exactly one value with the right token, on 127.0.0.1, then closes', async () => {
    const value = canary('INGEST');
    const child = spawn(process.execPath, [CLI, 'secrets', 'ingest', 'INGESTED_KEY', '--json', '--timeout', '60'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const first = await new Promise<{ url: string; token: string }>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(String(d).split('\n')[0]!))));
    assert.match(first.url, /^http:\/\/127\.0\.0\.1:\d+\/ingest\/[A-Za-z0-9_-]{22}$/);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    const wrongPath = await fetch(first.url.replace(/ingest\/.*/, 'ingest/guess'), { method: 'POST', headers: { 'x-ingest-token': first.token }, body: 'x' });
    assert.equal(wrongPath.status, 404);
    const wrongToken = await fetch(first.url, { method: 'POST', headers: { 'x-ingest-token': 'nope' }, body: 'x' });
    assert.equal(wrongToken.status, 404);
    const page = await fetch(`${first.url}?t=${first.token}`);
    assert.match(await page.text(), /<form method="post"/);
    const tooBig = await fetch(first.url, { method: 'POST', headers: { 'x-ingest-token': first.token }, body: 'x'.repeat(80 * 1024) });
    assert.equal(tooBig.status, 413);
    const ok = await fetch(first.url, { method: 'POST', headers: { 'x-ingest-token': first.token }, body: value });
    assert.equal(ok.status, 200);
    assert.equal(await exited, 0);
    await assert.rejects(fetch(first.url, { method: 'POST', headers: { 'x-ingest-token': first.token }, body: 'again' }));
    assertNoLeak(out, value, 'ingest output');
    const compare = await v.cli(['secrets', 'compare', 'INGESTED_KEY', '--json'], { input: value });
    assert.deepEqual(JSON.parse(compare.stdout), { match: true });
  });
});
