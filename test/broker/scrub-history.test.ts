// A scrubber's history holds the chunks its runs came from; matchers are pooled and reused, so
// a reset must let go of every chunk, or a free matcher keeps raw upstream bytes alive.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { History } from '../../src/broker/scrub/history.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Ten runs of plain bytes, each from a chunk of its own (a symbol between them); the chunks, weakly. */
function tenRuns(h: History): Array<WeakRef<Uint8Array>> {
  const held: Array<WeakRef<Uint8Array>> = [];
  for (let i = 0; i < 10; i++) {
    const chunk = new Uint8Array(1024).fill(0x61 + i);
    held.push(new WeakRef(chunk));
    h.plain(chunk, 0, i * 2000, 1024);
    h.symbol(0x20, i * 2000 + 1024, i * 2000 + 1025);
  }
  return held;
}

it('a reset lets go of every chunk, also where a copy from a shorter history set the count of runs back', async () => {
  const h = new History(64);
  const held = tenRuns(h);
  const shorter = new History(64);
  shorter.symbol(0x41, 0, 1);
  h.copyFrom(shorter, 8);
  h.reset();
  // Nothing else refers to the chunks now (a WeakRef keeps its target to the end of the job).
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.deepEqual(held.flatMap((r, i) => (r.deref() === undefined ? [] : [i])), []);
});
