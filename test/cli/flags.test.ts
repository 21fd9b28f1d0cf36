// The core names API fields, never CLI flags (SDK, daemon and MCP callers read its messages);
// the CLI shows its user the flag that sets the field.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { AivaultError } from '../../src/errors.ts';
import { FIELD_FLAGS, messageWithFlags } from '../../src/cli/flags.ts';
import { tempVault, type TempVault } from '../helpers/cli.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where flags may be named: the CLI. src/broker/ is being moved to fields; empty this list once it is. */
const FLAGS_ALLOWED = ['src/cli/'];

function coreSources(): Array<{ path: string; text: string }> {
  return readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => relative(ROOT, join(ROOT, 'src', f)).split('\\').join('/'))
    .filter((path) => !FLAGS_ALLOWED.some((dir) => path.startsWith(dir)))
    .map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));
}

describe('fields, not flags', () => {
  it('no file under src/ outside the CLI names a CLI flag, in a message or a comment', () => {
    const found = coreSources().flatMap(({ path, text }) => [...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => `${path}: ${m[0]}`));
    assert.deepEqual(found, []);
  });

  it('every field the core names in an error has a flag the CLI shows instead', () => {
    const fields = coreSources().flatMap(({ text }) => [...text.matchAll(/\bfield: '(\w+)'/g)].map((m) => m[1]!));
    assert.ok(fields.length > 0);
    assert.deepEqual(fields.filter((f) => !(f in FIELD_FLAGS)), []);
  });

  it("the CLI rewrites the error's field wherever it stands as a word, and camelCase fields anywhere; a plain word that is not the field stays", () => {
    const at = (message: string, field?: string) => messageWithFlags(new AivaultError('INVALID_ARGUMENT', message, field ? { field } : undefined));
    assert.equal(at('tokenEndpoint must be an absolute URL', 'tokenEndpoint'), '--token-endpoint must be an absolute URL');
    assert.equal(at('a group belongs to a workspace: give workspaceId with groupId', 'workspaceId'), 'a group belongs to a workspace: give --workspace-id with --group-id');
    assert.equal(at('x exists in several scopes (global, workspace:scope); pass scope or the secret id', 'scope'), 'x exists in several scopes (global, workspace:scope); pass --scope or the secret id');
    assert.equal(at('the path is outside the prefixes; name one with host', 'host'), 'the path is outside the prefixes; name one with --host');
    assert.equal(at('the owner did not allow it (allowHttp)'), 'the owner did not allow it (--allow-http)');
  });
});

describe('the CLI user still reads flags', () => {
  let v: TempVault;
  before(async () => {
    v = await tempVault();
  });
  after(() => v.cleanup());

  it('a core refusal naming a field is printed with its flag, as text and as JSON', async () => {
    const text = await v.cli(['secrets', 'create', '--name', 'SCOPED_KEY', '--value', 'abcdefghijkl', '--workspace-id', 'Not Valid']);
    assert.equal(text.code, 2);
    assert.match(text.stderr, /error INVALID_SCOPE: --workspace-id must be 1-64 lower-case letters/);
    const json = await v.cli(['secrets', 'create', '--name', 'SCOPED_KEY', '--value', 'abcdefghijkl', '--group-id', 'ml', '--json']);
    assert.deepEqual(JSON.parse(json.stderr), { error: { code: 'INVALID_SCOPE', message: 'a group belongs to a workspace: give --workspace-id with --group-id' } });
  });
});
