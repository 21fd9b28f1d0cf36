// OpenAnswers keeps its answers by reader, so a request's cover looks at each reader once and
// at the answers opened since, not at every answer open. Checked against the plain rule it
// stands for: before each send, every open answer of the sender's reader is widened to the
// sender's set, every other reader's to what that reader reaches now, each change once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OpenAnswers, type OpenAnswer } from '../../src/broker/open-answers.ts';
import type { Scrubber } from '../../src/broker/scrub/scrubber.ts';

/** Stand-ins: OpenAnswers only compares sets by identity and hands them on. */
const SETS = Array.from({ length: 4 }, (_, i) => ({ set: i }) as unknown as Scrubber);
const READERS = ['agent:a', 'agent:b', 'agent:c'];

type Op = { add: number } | { close: number } | { cover: { sender: number | undefined; set: number } } | { reach: { reader: number; set: number | undefined } };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.nat(READERS.length - 1).map((reader) => ({ add: reader })),
  fc.nat(40).map((i) => ({ close: i })),
  fc.record({ sender: fc.option(fc.nat(READERS.length - 1), { nil: undefined }), set: fc.nat(SETS.length - 1) }).map((cover) => ({ cover })),
  // What a reader reaches changes (a grant, a rotation), or it reaches nothing (unknown).
  fc.record({ reader: fc.nat(READERS.length - 1), set: fc.option(fc.nat(SETS.length - 1), { nil: undefined }) }).map((reach) => ({ reach })),
);

describe('open answers', () => {
  it('widens every open answer exactly as looking at each one on every send does (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const open = new OpenAnswers();
        const reaches = new Map<string, Scrubber | undefined>(READERS.map((r) => [r, SETS[0]]));
        const answers: Array<{ reader: string; close: () => void; widened: Scrubber[]; open: boolean }> = [];
        // The rule, one answer at a time: its last set, and each change.
        const model: Array<{ last: Scrubber | undefined; widened: Scrubber[] }> = [];
        for (const o of ops) {
          if ('add' in o) {
            const reader = READERS[o.add]!;
            const entry = { reader, widened: [] as Scrubber[], open: true, close: () => {} };
            const answer: OpenAnswer = { reader, reach: async () => reaches.get(reader), widen: (w) => entry.widened.push(w) };
            entry.close = open.add(answer);
            answers.push(entry);
            model.push({ last: undefined, widened: [] });
          } else if ('close' in o) {
            const i = o.close % Math.max(1, answers.length);
            if (answers[i]) {
              answers[i].close();
              answers[i].open = false;
            }
          } else if ('reach' in o) {
            reaches.set(READERS[o.reach.reader]!, o.reach.set === undefined ? undefined : SETS[o.reach.set]);
          } else {
            const sender = o.cover.sender === undefined ? undefined : READERS[o.cover.sender]!;
            await open.cover(sender, SETS[o.cover.set]!, 1);
            answers.forEach((a, i) => {
              if (!a.open) return;
              const wider = a.reader === sender ? SETS[o.cover.set] : reaches.get(a.reader);
              if (wider === undefined || wider === model[i]!.last) return;
              model[i]!.last = wider;
              model[i]!.widened.push(wider);
            });
          }
          assert.equal(open.size, answers.filter((a) => a.open).length, 'size');
        }
        answers.forEach((a, i) => assert.deepEqual(a.widened, model[i]!.widened, `answer ${i} (${a.reader})`));
      }),
      { numRuns: 300, seed: 20261201 },
    );
  });
});
