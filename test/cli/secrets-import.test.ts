// `aivault secrets import`: many secrets from entries or a dotenv file; all-or-nothing checks
// before any write; values never printed.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNoLeak, canary, readAllFiles, recorder, tempVault, type TempVault } from '../helpers/cli.ts';

type Err = { error: { code: string } };

describe('aivault secrets import', () => {
  let v: TempVault;
  const a = canary('IMPA');
  const b = canary('IMPB');
  const c = canary('IMPC');
  const { run, outputs } = recorder(() => v);
  const names = async () => (JSON.parse((await v.cli(['secrets', 'list', '--json'])).stdout) as Array<{ name: string; scope: string }>).map((s) => `${s.name}@${s.scope}`).sort();

  before(async () => {
    v = await tempVault();
  });
  after(() => {
    for (const o of outputs) for (const x of [a, b, c]) assertNoLeak(o, x, 'import output');
    v.cleanup();
  });

  it('imports a dotenv file (comments, quotes, export) and entries; prints names and refs only', async () => {
    const file = join(v.dir, '..', 'app.env');
    writeFileSync(file, `# app\nOPENAI_API_KEY=${a}\nexport STRIPE_SECRET_KEY="${b}"\n`);
    const r = await run(['secrets', 'import', '--file', file, '--entry', `APP_TOKEN=${c}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Array<{ name: string; action: string; ref: string }>;
    assert.deepEqual(out.map((x) => [x.name, x.action]).sort(), [['APP_TOKEN', 'created'], ['OPENAI_API_KEY', 'created'], ['STRIPE_SECRET_KEY', 'created']]);
    assert.ok(out.every((x) => x.ref.startsWith('vault:secret:')));
    const match = await run(['secrets', 'compare', 'STRIPE_SECRET_KEY'], { input: b });
    assert.equal(match.stdout.trim(), 'match', 'quotes are not part of the value');
    for (const [, bytes] of readAllFiles(v.dir)) for (const x of [a, b, c]) assertNoLeak(bytes.toString('latin1'), x, 'vault files');
  });

  it('existing names are refused as a whole without --overwrite; with it they are rotated', async () => {
    const before = await names();
    const refused = await run(['secrets', 'import', '--entry', 'NEW_ONE=new-value-1234', '--entry', 'APP_TOKEN=other-value-1234', '--json']);
    assert.equal((JSON.parse(refused.stderr) as Err).error.code, 'SECRET_ALREADY_EXISTS');
    assert.deepEqual(await names(), before, 'nothing was written, not even NEW_ONE');
    const rotated = await run(['secrets', 'import', '--file', '-', '--overwrite', '--json'], { input: `APP_TOKEN=${c}-v2\nNEW_ONE=new-value-1234\n` });
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.deepEqual((JSON.parse(rotated.stdout) as Array<{ name: string; action: string }>).map((x) => x.action).sort(), ['created', 'rotated']);
    assert.equal((JSON.parse((await v.cli(['secrets', 'describe', 'APP_TOKEN', '--json'])).stdout) as { currentVersion: number }).currentVersion, 2);
  });

  it('bad input writes nothing: invalid name, empty value, duplicate, bad scope', async () => {
    const before = await names();
    const cases: Array<[string[], string, string?]> = [
      [['--entry', 'GOOD_ONE=x1234-value', '--entry', 'bad-name=x1234-value'], 'INVALID_NAME'],
      [['--entry', 'GOOD_ONE=x1234-value', '--entry', 'EMPTY_ONE='], 'SECRET_EMPTY'],
      [['--entry', 'GOOD_ONE=x1234-value', '--entry', 'GOOD_ONE=y1234-value'], 'INVALID_ARGUMENT', '--entry 2: GOOD_ONE is given twice (first at --entry 1)'],
      [['--entry', 'GOOD_ONE=x1234-value', '--scope', 'nowhere'], 'INVALID_SCOPE'],
      // Checked before anything is written: a value past the limit after a good one.
      [['--entry', 'GOOD_ONE=x1234-value', '--entry', `HUGE_ONE=${'x'.repeat(64 * 1024 + 1)}`], 'SECRET_TOO_LARGE'],
      [['--entry', 'GOOD_ONE=x1234-value', '--entry', 'SHORT_ONE=abc'], 'SECRET_TOO_SHORT'],
      [[], 'INVALID_ARGUMENT'],
    ];
    for (const [args, code, message] of cases) {
      const r = await run(['secrets', 'import', ...args, '--json']);
      const { error } = JSON.parse(r.stderr) as Err & { error: { message: string } };
      assert.equal(error.code, code, args.join(' '));
      if (message) assert.ok(error.message.startsWith(message), error.message);
    }
    assert.deepEqual(await names(), before);
  });

  it('a dotenv file that tools read differently is refused with its line, and nothing is written', async () => {
    const before = await names();
    const cases: Array<[string, string, string]> = [
      // A name twice: dotenv keeps the first, Node's parser the last.
      [`FIRST_KEY=${a}\nTWICE_KEY=value-one-1234\n# comment\nTWICE_KEY=value-two-1234\n`, 'INVALID_ARGUMENT', 'line 4: TWICE_KEY is given twice (first at line 2)'],
      // An unquoted # glued to the value: dotenv would store `correct-horse`.
      [`FIRST_KEY=${a}\nPASSWORD_KEY=correct-horse#battery\n`, 'INVALID_ARGUMENT', 'line 2: PASSWORD_KEY: an unquoted #'],
      // An unterminated quote: dotenv would store the quote as part of the value.
      [`FIRST_KEY=${a}\n\nQUOTED_KEY="abcdefgh-1234\n`, 'INVALID_ARGUMENT', 'line 3: QUOTED_KEY: the " quote opened here is never closed'],
      [`FIRST_KEY=${a}\nbad-name=abcdefgh-1234\n`, 'INVALID_NAME', 'line 2: '],
      [`FIRST_KEY=${a}\nEMPTY_KEY=\n`, 'SECRET_EMPTY', 'line 2: '],
      [`FIRST_KEY=${a}\nHUGE_KEY=${'x'.repeat(64 * 1024 + 1)}\n`, 'SECRET_TOO_LARGE', 'line 2: '],
    ];
    for (const [file, code, message] of cases) {
      const r = await run(['secrets', 'import', '--file', '-', '--json'], { input: file });
      const { error } = JSON.parse(r.stderr) as Err & { error: { message: string } };
      assert.equal(error.code, code, file.slice(0, 80));
      assert.ok(error.message.startsWith(message) && error.message.endsWith('nothing imported'), error.message);
    }
    assert.deepEqual(await names(), before);
  });
});
