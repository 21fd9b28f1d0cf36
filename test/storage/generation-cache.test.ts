import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GenerationCache } from '../../src/storage/generation-cache.ts';

/** A cache over a generation the test moves, and a load that counts how often it ran. */
function setup(max?: number) {
  let generation = 1;
  let loads = 0;
  const cache = new GenerationCache(async () => generation, max);
  const load = (value: unknown) => async () => {
    loads++;
    return value;
  };
  return { cache, load, setGeneration: (g: number) => (generation = g), loads: () => loads };
}

describe('GenerationCache', () => {
  it('shares a read between snapshots at one generation, and drops it when the generation moves', async () => {
    const c = setup();
    assert.equal(await (await c.cache.snapshot()).memo('k', c.load('a')), 'a');
    assert.equal(await (await c.cache.snapshot()).memo('k', c.load('b')), 'a');
    assert.equal(c.loads(), 1);
    c.setGeneration(2);
    assert.equal(await (await c.cache.snapshot()).memo('k', c.load('b')), 'b');
    assert.equal(c.loads(), 2);
  });

  it('a snapshot older than the newest seen reads for itself and keeps nothing', async () => {
    const c = setup();
    const old = await c.cache.snapshot();
    c.setGeneration(2);
    const now = await c.cache.snapshot();
    assert.equal(await now.memo('k', c.load('new')), 'new');
    assert.equal(await old.memo('k', c.load('old')), 'old');
    assert.equal(await now.memo('k', c.load('other')), 'new');
    assert.equal(c.loads(), 2);
  });

  it('keeps nothing its `keep` refuses, nor a failed read', async () => {
    const c = setup();
    const at = await c.cache.snapshot();
    const defined = (v: unknown) => v !== undefined;
    assert.equal(await at.memo('unknown', c.load(undefined), defined), undefined);
    assert.equal(await at.memo('unknown', c.load(undefined), defined), undefined);
    await assert.rejects(at.memo('fails', async () => Promise.reject(new Error('down'))));
    assert.equal(await at.memo('fails', c.load('up')), 'up');
    assert.equal(c.loads(), 3);
  });

  it('past its bound, drops what has gone unused longest', async () => {
    const c = setup(2);
    const at = await c.cache.snapshot();
    for (const k of ['a', 'b']) await at.memo(k, c.load(k));
    await at.memo('a', c.load('a')); // used again: b is now the one unused longest
    await at.memo('c', c.load('c'));
    await at.memo('a', c.load('a'));
    assert.equal(c.loads(), 3);
    await at.memo('b', c.load('b'));
    assert.equal(c.loads(), 4);
  });

  it('a generation the caller already read gives the same snapshot as one read here', async () => {
    const c = setup();
    assert.equal(await c.cache.at(1).memo('k', c.load('a')), 'a');
    assert.equal(await (await c.cache.snapshot()).memo('k', c.load('b')), 'a');
    assert.equal(c.loads(), 1);
  });

  it('holds at most its bound', async () => {
    const c = setup(2);
    const at = await c.cache.snapshot();
    for (const k of ['a', 'b', 'c']) await at.memo(k, c.load(k));
    await at.memo('c', c.load('c'));
    await at.memo('a', c.load('a')); // the oldest went
    assert.equal(c.loads(), 4);
  });
});
