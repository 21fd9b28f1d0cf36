// Issue 15: what an agent puts into a record cannot forge a line, drive the owner's
// terminal or reorder what the owner reads, and is bounded. Agent side through a daemon
// process; owner side through the real CLI.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { printable } from '../../src/cli/output.ts';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

/** What a terminal or a reader acts on: controls, separators, bidi and invisible formatting. */
const ACTIVE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

describe('printable', () => {
  it('leaves nothing a terminal or reader acts on, and keeps every other character (property)', () => {
    const char = fc.oneof(
      fc.constantFrom('\n', '\r', '\t', '\u001b', '\u0007', '\u009b', '\u202e', '\u2066', '\u200b', '\u2028', '\ufeff', '\u00ad', '\u034f', '\u3164', '\u180e', '\u{e0041}', '\u{e0049}', '\ufe0f', '\\', 'x', 'é', '|', '😀'),
      fc.string({ maxLength: 1, unit: 'binary' }),
    );
    fc.assert(
      fc.property(fc.array(char, { maxLength: 40 }).map((a) => a.join('')), (s) => {
        const out = printable(s);
        assert.doesNotMatch(out, ACTIVE);
        const escapes = /\\(x[0-9a-f]{2}|u[0-9a-f]{4}|u\{[0-9a-f]+\}|[nrt])/g;
        assert.equal(out.replace(escapes, ''), s.replace(new RegExp(ACTIVE.source, 'gu'), '').replace(escapes, ''));
      }),
      { numRuns: 300, seed: 20261130 },
    );
  });
});

describe('agent text in the audit log and in errors', () => {
  let v: TempVault;
  let d: RunningDaemon;
  let token: string;

  before(async () => {
    v = await tempVault();
    token = (JSON.parse((await v.cli(['agent', 'create', 'forger', '--json'])).stdout) as { token: string }).token;
    d = await startDaemon(v, ['--socket', join(v.dir, 'p.sock')]);
  });
  after(async () => {
    await d.stop();
    v.cleanup();
  });

  it('audit list shows one line per record, escaped, and a record holds a bounded id', async () => {
    const dispatcher = new Agent({ connect: { socketPath: d.socket! } });
    const forged = [
      'x\n9999  2026-01-01T00:00:00.000Z  owner:local  secret.reveal  ALL  allow',
      '\u001b]0;pwned\u0007\u001b[2J\u001b[31mred',
      'evil\u202etxt.exe\u2066',
      'long-' + 'a'.repeat(20_000),
    ];
    try {
      for (const capability of forged) {
        const res = await request('http://aivault/v1/invoke', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ capability, method: 'GET', path: '/x' }), dispatcher });
        await res.body.dump();
        assert.ok([400, 403].includes(res.statusCode), String(res.statusCode));
      }
    } finally {
      await dispatcher.close();
    }
    const list = await v.cli(['audit', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.doesNotMatch(list.stdout.replace(/\n/g, ''), ACTIVE);
    const records = JSON.parse((await v.cli(['audit', 'list', '--json'])).stdout) as Array<{ capability: string | null }>;
    assert.equal(list.stdout.trimEnd().split('\n').length, records.length + 1, 'a header line and one line per record');
    assert.ok(records.every((r) => (r.capability ?? '').length <= 512), 'every stored field is bounded');
    assert.equal((await v.cli(['audit', 'verify'])).code, 0);
  });

  it('an error quoting what was typed is escaped too', async () => {
    const r = await v.cli(['capability', 'describe', 'x\u001b[31m\nerror FAKE: forged']);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr.replace(/\n/g, ''), ACTIVE);
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('error ')).length, 1);
  });
});
