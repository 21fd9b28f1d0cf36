import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { REDACTED, Scrubber } from '../../src/broker/scrub.ts';
import { canary } from '../helpers/cli.ts';

async function scrubChunks(s: Scrubber, chunks: Buffer[]): Promise<string> {
  const t = s.stream();
  const out: Buffer[] = [];
  t.on('data', (d: Buffer) => out.push(d));
  const ended = new Promise((r) => t.on('end', r));
  for (const c of chunks) t.write(c);
  t.end();
  await ended;
  return Buffer.concat(out).toString('utf8');
}

describe('response scrubbing', () => {
  const secret = `${canary()}/+?&= "q"`;
  const s = new Scrubber([secret]);
  const forms = {
    raw: secret,
    base64: Buffer.from(secret).toString('base64'),
    base64url: Buffer.from(secret).toString('base64url'),
    urlencoded: encodeURIComponent(secret),
    form: new URLSearchParams({ v: secret }).toString().slice(2),
    json: JSON.stringify(secret).slice(1, -1),
  };

  for (const [name, form] of Object.entries(forms)) {
    it(`removes the ${name} form`, () => {
      const out = s.scrubText(`before ${form} after ${form}`);
      assert.equal(out.includes(form), false);
      assert.equal(out, `before ${REDACTED} after ${REDACTED}`);
    });
  }

  it('catches a secret split at every possible chunk boundary', async () => {
    const body = Buffer.from(`{"echo":"${secret}","n":1}`);
    for (let i = 1; i < body.length; i++) {
      const out = await scrubChunks(s, [body.subarray(0, i), body.subarray(i)]);
      assert.equal(out.includes(secret), false, `split at ${i}`);
      assert.equal(out, `{"echo":"${REDACTED}","n":1}`);
    }
  });

  it('scrubs a secret at the very end of a stream (held back, then flushed)', async () => {
    const out = await scrubChunks(s, [Buffer.from('tail '), Buffer.from(secret)]);
    assert.equal(out, `tail ${REDACTED}`);
  });

  it('catches a secret dribbled one byte per chunk', async () => {
    const body = Buffer.from(`x${forms.base64}y`);
    const out = await scrubChunks(s, [...body].map((b) => Buffer.of(b)));
    assert.equal(out, `x${REDACTED}y`);
  });

  it('releases a chunk at once when its tail cannot start a secret (SSE event by event)', async () => {
    const t = s.stream();
    const input = new PassThrough();
    input.pipe(t);
    const first = new Promise<string>((resolve) => t.once('data', (d: Buffer) => resolve(d.toString())));
    input.write('data: {"delta":"hello"}\n\n');
    assert.equal(await first, 'data: {"delta":"hello"}\n\n');
    input.end();
  });

  it('leaves bodies without secrets byte-identical, and ignores too-short values', async () => {
    const body = Buffer.from('{"ok":true}');
    assert.equal(await scrubChunks(s, [body]), '{"ok":true}');
    assert.equal(new Scrubber(['abc']).scrubText('abc abc'), 'abc abc');
  });
});
