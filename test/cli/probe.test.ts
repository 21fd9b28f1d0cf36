import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNoLeak, canary, runCli, tempVault, type TempVault } from '../helpers/cli.ts';

describe('secrets compare and prove', () => {
  let v: TempVault;
  const value = canary('PROBE');
  const outputs: string[] = [];
  before(async () => {
    v = await tempVault();
    assert.equal((await v.cli(['secrets', 'create', '--name', 'PROBED', '--value', value])).code, 0);
  });
  after(() => v.cleanup());

  it('compares in constant time without printing the value', async () => {
    const yes = await v.cli(['secrets', 'compare', 'PROBED', '--json'], { input: `${value}\n` });
    const no = await v.cli(['secrets', 'compare', 'PROBED', '--json'], { input: `${value}x` });
    outputs.push(yes.stdout, yes.stderr, no.stdout, no.stderr);
    assert.deepEqual(JSON.parse(yes.stdout), { match: true });
    assert.deepEqual(JSON.parse(no.stdout), { match: false });
    assert.deepEqual([yes.code, no.code], [0, 12], 'no match has its own exit status, for scripts');
  });

  it('proves possession with an HMAC of the challenge', async () => {
    const r = await v.cli(['secrets', 'prove', 'PROBED', '--challenge', 'nonce-12345678']);
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.stdout.trim(), createHmac('sha256', value).update('nonce-12345678').digest('hex'));
  });

  it('is rate limited per secret across processes, and audited', async () => {
    let limited = 0;
    for (let i = 0; i < 9; i++) {
      const r = await v.cli(['secrets', 'compare', 'PROBED', '--json'], { input: 'guess' });
      outputs.push(r.stdout, r.stderr);
      if (r.code === 7) limited++;
    }
    assert.ok(limited >= 1, 'the 11th probe within a minute is refused');
    const records = JSON.parse((await v.cli(['audit', 'list', '--json'])).stdout) as Array<{ action: string; decision: string; reason: string | null }>;
    assert.ok(records.filter((r) => r.action === 'secret.compare' && r.decision === 'allow').length >= 9);
    assert.ok(records.some((r) => r.action === 'secret.compare' && r.reason === 'RATE_LIMITED'));
    for (const out of outputs) assertNoLeak(out, value, 'probe output');
  });
});

describe('shell completion', () => {
  it('bash completes commands and subcommands from the live command tree', async () => {
    const script = (await runCli(['completion', 'bash'])).stdout;
    const file = join(process.env.TMPDIR ?? '/tmp', `aivault-completion-${process.pid}.sh`);
    writeFileSync(file, script);
    const complete = (words: string[]) =>
      spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(${words.map((w) => `"${w}"`).join(' ')}); COMP_CWORD=${words.length - 1}; _aivault; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).stdout.trim().split(' ');
    assert.ok(complete(['aivault', 'inv']).includes('invoke'));
    assert.deepEqual(complete(['aivault', 'secrets', 'ro']).sort(), ['rollback', 'rotate']);
    assert.ok(complete(['aivault', 'invoke', 'x', '--']).includes('--method'));
    const fish = await runCli(['completion', 'fish']);
    assert.match(fish.stdout, /complete -c aivault -n '__fish_use_subcommand' -a 'serve'/);
    assert.equal((await runCli(['completion', 'tcsh'])).code, 2);
  });
});
