// Multipart bodies: built by the CLI (which reads the files), sent in process or through
// the daemon as bytes; the daemon's API has no way to name a file for it to open.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('multipart request bodies', () => {
  let v: TempVault;
  let up: Upstream;
  let d: RunningDaemon;
  let token: string;
  let file: string;
  const bytes = randomBytes(70_000);

  before(async () => {
    v = await tempVault();
    up = await startUpstream();
    // The stand-in parses the form with the Fetch API and reports what it got.
    up.handle('/v1/files', (req, res, body) => {
      void new Request('http://stand-in/', { method: 'POST', headers: req.headers as Record<string, string>, body }).formData().then(async (form) => {
        const out: Record<string, unknown> = { contentType: req.headers['content-type'] };
        for (const [k, val] of form) out[k] = typeof val === 'string' ? val : { name: val.name, size: val.size, sha256: createHash('sha256').update(Buffer.from(await val.arrayBuffer())).digest('hex') };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(out));
      });
    });
    const ref = (await v.cli(['secrets', 'create', '--name', 'FILES_KEY', '--value', 'files-key-0123456789'])).stdout.trim();
    for (const args of [
      ['credential', 'create', 'files', '--provider', 'files', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', up.host, '--allow-http', '--allow-private-network'],
      ['capability', 'create', 'files/upload', '--provider', 'files', '--credential', 'files', '--method', 'POST', '--path', '/v1/files'],
    ]) assert.equal((await v.cli(args)).code, 0);
    token = (JSON.parse((await v.cli(['agent', 'create', 'uploader', '--json'])).stdout) as { token: string }).token;
    assert.equal((await v.cli(['grant', 'uploader', 'files/upload'])).code, 0);
    file = join(v.dir, '..', 'training.jsonl');
    writeFileSync(file, bytes);
    d = await startDaemon(v, ['--socket', join(v.dir, 'mp.sock')]);
  });
  after(async () => {
    await d.stop();
    await up.close();
    v.cleanup();
  });

  for (const mode of ['in process', 'through the daemon'] as const) {
    it(`fields and files arrive intact, with aivault's content type (${mode})`, async () => {
      const env: Record<string, string> = mode === 'in process' ? {} : { AIVAULT_SOCKET: d.socket!, AIVAULT_AGENT_TOKEN: token };
      const r = await v.cli(['invoke', 'files/upload', '--method', 'POST', '--multipart-field', 'purpose=fine-tune', '--multipart-file', `file=${file}`, '--header', 'content-type: text/plain', '--json'], { env });
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse((JSON.parse(r.stdout) as { body: string }).body) as { contentType: string; purpose: string; file: { name: string; size: number; sha256: string } };
      assert.match(got.contentType, /^multipart\/form-data; boundary=/);
      assert.equal(got.purpose, 'fine-tune');
      assert.deepEqual(got.file, { name: 'training.jsonl', size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      assert.equal(up.received.at(-1)!.headers['x-key'], 'files-key-0123456789');
    });
  }

  it("the daemon's API takes bytes only: a request naming a file is refused before anything is sent", async () => {
    const before = up.received.length;
    for (const extra of [{ bodyFile: file }, { multipartFile: { file } }, { file }]) {
      const r = await request('http://aivault/v1/invoke', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ capability: 'files/upload', method: 'POST', path: '/v1/files', ...extra }),
        dispatcher: new Agent({ connect: { socketPath: d.socket! } }),
      });
      assert.deepEqual([r.statusCode, r.headers['x-aivault-error']], [400, 'INVALID_ARGUMENT']);
      await r.body.dump();
    }
    assert.equal(up.received.length, before);
  });

  it('one body source at a time; an unreadable file is a clear error', async () => {
    const both = await v.cli(['invoke', 'files/upload', '--method', 'POST', '--body', 'x', '--multipart-field', 'a=b', '--json']);
    assert.equal((JSON.parse(both.stderr) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
    const missing = await v.cli(['invoke', 'files/upload', '--method', 'POST', '--multipart-file', 'file=/nonexistent/x', '--json']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read --multipart-file file: ENOENT/);
  });
});
