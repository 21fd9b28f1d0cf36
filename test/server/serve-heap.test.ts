// `aivault serve` starts itself again with the V8 heap flags its memory was measured with
// (src/cli/main.ts), keeping a flag the user gave instead of adding a second.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon } from '../helpers/daemon.ts';

const flagsOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--') && a.includes('='));

describe('serve: the heap it runs with', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  let v: TempVault;
  before(async () => (v = await tempVault()));
  after(() => v.cleanup());

  it('runs with a small young generation and a conservative old-generation growth', async () => {
    const d = await startDaemon(v, ['--socket', join(v.dir, 'heap.sock')]);
    try {
      const flags = flagsOf(d.process.pid!);
      assert.ok(flags.includes('--max-semi-space-size=4'), flags.join(' '));
      assert.ok(flags.includes('--heap-growing-percent=50'), flags.join(' '));
    } finally {
      await d.stop();
    }
  });

  it('keeps a heap flag given to node and adds only the other', async () => {
    const d = await startDaemon(v, ['--socket', join(v.dir, 'heap2.sock')], ['--heap-growing-percent=60']);
    try {
      const flags = flagsOf(d.process.pid!);
      assert.deepEqual(flags.filter((f) => f.startsWith('--heap-growing-percent')), ['--heap-growing-percent=60']);
      assert.ok(flags.includes('--max-semi-space-size=4'), flags.join(' '));
    } finally {
      await d.stop();
    }
  });
});
