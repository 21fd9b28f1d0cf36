import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tempVault, type CliResult, type TempVault } from '../helpers/cli.ts';

interface CapView { id: string; provider: string; ready: boolean; missingSecrets: string[]; source: string }

function ok<T>(r: CliResult): T {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

describe('pinning and auto-provisioning (CLI, end to end)', () => {
  let v: TempVault;
  before(async () => {
    v = await tempVault();
  });
  after(() => v.cleanup());

  const caps = async () => ok<CapView[]>(await v.cli(['capability', 'list', '--json']));

  it('starts with no capability enabled', async () => {
    assert.deepEqual(await caps(), []);
  });

  it('OPENAI_API_KEY pins the secret and enables exactly the openai capabilities', async () => {
    const created = ok<{ pinnedProvider: string; provisioning: { ready: boolean } }>(await v.cli(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', 'sk-test-1', '--json']));
    assert.equal(created.pinnedProvider, 'openai');
    assert.equal(created.provisioning.ready, true);
    const list = await caps();
    assert.ok(list.length > 0);
    assert.ok(list.every((c) => c.provider === 'openai' && c.ready && c.source === 'builtin'));
    assert.ok(list.some((c) => c.id === 'openai/chat-completions'));
    const described = ok<{ ready: boolean; enabled: boolean }>(await v.cli(['capability', 'describe', 'openai/chat-completions', '--json']));
    assert.equal(described.ready, true);
    const other = ok<{ enabled: boolean; ready: boolean }>(await v.cli(['capability', 'describe', 'anthropic/messages', '--json']));
    assert.deepEqual([other.enabled, other.ready], [false, false]);
  });

  it('a custom name stays unpinned and enables nothing', async () => {
    const created = ok<{ pinnedProvider: string | null }>(await v.cli(['secrets', 'create', '--name', 'MY_CUSTOM_KEY', '--value', 'custom-value-1', '--json']));
    assert.equal(created.pinnedProvider, null);
    assert.ok((await caps()).every((c) => c.provider === 'openai'));
  });

  it('rotation keeps the pin', async () => {
    const rotated = ok<{ pinnedProvider: string; currentVersion: number }>(await v.cli(['secrets', 'rotate', 'OPENAI_API_KEY', '--value', 'sk-test-2', '--json']));
    assert.deepEqual([rotated.pinnedProvider, rotated.currentVersion], ['openai', 2]);
  });

  it('a multi-secret provider is ready only when all its secrets exist, and says which are missing', async () => {
    await v.cli(['secrets', 'create', '--name', 'TRELLO_API_KEY', '--value', 'trello-api-key-1']);
    let trello = (await caps()).filter((c) => c.provider === 'trello');
    assert.ok(trello.length > 0);
    assert.ok(trello.every((c) => !c.ready && c.missingSecrets.join() === 'TRELLO_TOKEN'));
    const plain = await v.cli(['capability', 'list']);
    assert.match(plain.stdout, /trello\/cards +trello +builtin +no \(missing TRELLO_TOKEN\)/);
    await v.cli(['secrets', 'create', '--name', 'TRELLO_TOKEN', '--value', 'trello-token-1']);
    trello = (await caps()).filter((c) => c.provider === 'trello');
    assert.ok(trello.every((c) => c.ready && c.missingSecrets.length === 0));
  });

  it('deleting a pinned secret disables its capabilities; re-creating re-enables them', async () => {
    assert.equal((await v.cli(['secrets', 'delete', 'TRELLO_TOKEN', '--yes'])).code, 0);
    assert.ok((await caps()).filter((c) => c.provider === 'trello').every((c) => !c.ready));
    assert.equal((await v.cli(['secrets', 'delete', 'OPENAI_API_KEY', '--yes'])).code, 0);
    assert.equal((await caps()).some((c) => c.provider === 'openai'), false);
    const describe = ok<{ enabled: boolean }>(await v.cli(['capability', 'describe', 'openai/chat-completions', '--json']));
    assert.equal(describe.enabled, false);
    await v.cli(['secrets', 'create', '--name', 'OPENAI_API_KEY', '--value', 'sk-test-3']);
    await v.cli(['secrets', 'create', '--name', 'TRELLO_TOKEN', '--value', 'trello-token-2']);
    const list = await caps();
    assert.ok(list.filter((c) => c.provider === 'openai').every((c) => c.ready));
    assert.ok(list.filter((c) => c.provider === 'trello').every((c) => c.ready));
  });

  it('registry show never reveals values, only names', async () => {
    const r = await v.cli(['registry', 'show', 'trello', '--json']);
    const shown = ok<{ secrets: Array<{ name: string }> }>(r);
    assert.deepEqual(shown.secrets.map((s) => s.name), ['TRELLO_API_KEY', 'TRELLO_TOKEN']);
    assert.equal(r.stdout.includes('trello-token-2'), false);
    const missing = await v.cli(['registry', 'show', 'nope', '--json']);
    assert.equal(missing.code, 3);
  });
});
