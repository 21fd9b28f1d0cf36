// Shell completion completes names from the vault, read without its key: a vault whose key
// is nowhere to be found (a passphrase not given) still completes, and only names come back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { completionNames } from '../../src/cli/completion-names.ts';
import { composeServices } from '../../src/services.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';
import { Vault } from '../../src/vault/vault.ts';
import { CLI, canary } from '../helpers/cli.ts';

describe('completion from the vault', () => {
  const root = mkdtempSync(join(tmpdir(), 'aivault-completion-'));
  const dir = join(root, 'vault');
  const VALUE = canary('COMPLETE');

  before(async () => {
    const vault = await Vault.init({ dir, keyProvider: 'passphrase', readPassphrase: async () => 'a passphrase nobody types at a TAB' });
    const services = composeServices(vault, await builtinRegistry());
    const secret = await vault.createSecret({ name: 'NOTES_TOKEN', value: Buffer.from(VALUE), aliases: ['notes-token'] });
    await services.definitions.createCredential({ name: 'notes', provider: 'notes', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: secret.ref }, hosts: ['api.notes.test'] });
    await services.definitions.createCapability({ id: 'notes/read', provider: 'notes', credential: 'notes', methods: ['GET'], pathPrefixes: ['/v1'], hosts: [] });
    await services.agents.create('bot');
    await services.close();
    await vault.close();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('names of each kind, the registry\'s and the vault\'s, without the key', async () => {
    assert.deepEqual(await completionNames('secrets', dir), ['NOTES_TOKEN', 'notes-token']);
    assert.deepEqual(await completionNames('agents', dir), ['bot']);
    const capabilities = await completionNames('capabilities', dir);
    assert.ok(capabilities.includes('notes/read') && capabilities.includes('openai/chat-completions'));
    const credentials = await completionNames('credentials', dir);
    assert.ok(credentials.includes('notes') && credentials.includes('openai'));
    assert.ok((await completionNames('providers', dir)).includes('notes'));
    assert.deepEqual(await completionNames('values', dir), []);
    assert.deepEqual(await completionNames('secrets', join(root, 'nowhere')), []);
  });

  it('bash completes an argument and an option value from the vault', () => {
    const bin = join(root, 'bin');
    rmSync(bin, { recursive: true, force: true });
    spawnSync('mkdir', [bin]);
    writeFileSync(join(bin, 'aivault'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'aivault'), 0o755);
    const script = `eval "$(aivault completion bash)"
t() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _aivault; echo "\${COMPREPLY[*]}"; }
t aivault secrets describe N
t aivault grant b
t aivault grant bot notes/
t aivault grant bot notes/read notes/
t aivault capability update notes/read --credential note`;
    const r = spawnSync('bash', ['-c', script], { env: { PATH: `${bin}:${process.env.PATH}`, HOME: root, AIVAULT_DIR: dir }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['NOTES_TOKEN', 'bot', 'notes/read', 'notes/read', 'notes']);
    assert.equal(r.stdout.includes(VALUE), false);
  });
});
