// `aivault init` on a real terminal (a pty from util-linux `script`): the guide stores a
// first key read without echo, and ends with the invoke to try. The key never appears in
// the terminal transcript.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI, assertNoLeak, canary, runCli, CHILD_ENV } from '../helpers/cli.ts';

/** Runs `aivault ARGS` on a pty, answering each prompt (matched by regex) as it appears. */
function onTerminal(args: string[], env: Record<string, string>, answers: Array<[RegExp, string]>): Promise<{ code: number | null; transcript: string }> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', quoted, '/dev/null'], { env: { ...CHILD_ENV, TERM: 'dumb', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let transcript = '';
  const pending = [...answers];
  child.stdout.on('data', (d: Buffer) => {
    transcript += d;
    const next = pending[0];
    if (next && next[0].test(transcript)) {
      pending.shift();
      child.stdin.write(`${next[1]}\r`);
    }
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, transcript })));
}

describe('aivault init on a terminal', () => {
  const root = mkdtempSync(join(tmpdir(), 'aivault-first-run-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('guides to a first stored key and the invoke that uses it; the key is never echoed', async () => {
    const dir = join(root, 'v1');
    const key = canary('FIRSTRUN');
    const r = await onTerminal(['init', '--key-provider', 'keyfile'], { AIVAULT_DIR: dir }, [
      [/Provider \(.*\): $/m, 'sendgrid'],
      [/SENDGRID_API_KEY \(input hidden\): $/m, key],
    ]);
    assert.equal(r.code, 0, r.transcript);
    assert.match(r.transcript, /stored SENDGRID_API_KEY \(pinned to sendgrid\)/);
    assert.match(r.transcript, /aivault invoke sendgrid\/mail-send --method POST --path \/v3\/mail\/send/);
    assertNoLeak(r.transcript, key, 'terminal transcript');
    const list = await runCli(['secrets', 'list', '--json'], { env: { AIVAULT_DIR: dir } });
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ name: string; pinnedProvider: string }>).map((s) => [s.name, s.pinnedProvider]), [['SENDGRID_API_KEY', 'sendgrid']]);
    const compare = await runCli(['secrets', 'compare', 'SENDGRID_API_KEY'], { env: { AIVAULT_DIR: dir }, input: key });
    assert.equal(compare.stdout.trim(), 'match', 'the stored value is exactly what was typed');
  });

  it('Enter skips the guide; an unknown provider stores nothing', async () => {
    const skipped = await onTerminal(['init', '--key-provider', 'keyfile'], { AIVAULT_DIR: join(root, 'v2') }, [[/Provider \(.*\): $/m, '']]);
    assert.equal(skipped.code, 0, skipped.transcript);
    assert.match(skipped.transcript, /skipped; later: aivault secrets create/);
    const unknown = await onTerminal(['init', '--key-provider', 'keyfile'], { AIVAULT_DIR: join(root, 'v3') }, [[/Provider \(.*\): $/m, 'nosuchprovider']]);
    assert.match(unknown.transcript, /no built-in provider "nosuchprovider"/);
    const list = await runCli(['secrets', 'list', '--json'], { env: { AIVAULT_DIR: join(root, 'v3') } });
    assert.deepEqual(JSON.parse(list.stdout), []);
  });

  it('off a terminal it prints the next steps, and --no-guide (scripts, the demo) prints none', async () => {
    const plain = await runCli(['init', '--key-provider', 'keyfile'], { env: { AIVAULT_DIR: join(root, 'v4') } });
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stderr, /^next: aivault secrets create/m);
    const scripted = await runCli(['init', '--key-provider', 'keyfile', '--no-guide'], { env: { AIVAULT_DIR: join(root, 'v5') } });
    assert.equal(scripted.code, 0, scripted.stderr);
    assert.doesNotMatch(scripted.stderr, /next:|then:/);
  });
});
