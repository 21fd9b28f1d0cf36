// credential update and capability update, in process: checked by create's validators (the
// same codes and fields), against the capabilities a credential serves, audited with what
// changed and never a value; and what create can tell of a host before any request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AivaultError, isAivaultError } from '../../src/errors.ts';
import { canary } from '../helpers/cli.ts';
import { testBroker, type TestBroker } from '../helpers/broker.ts';

const HEADER = { header: { header_name: 'x-key', value_template: '{{secret}}' } } as const;

/** The error a call fails with (the test fails if it does not). */
async function failure(p: Promise<unknown>): Promise<AivaultError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AivaultError) return err;
    throw err;
  }
  assert.fail('expected a refusal');
}

describe('credential update and capability update', () => {
  let t: TestBroker;
  const VALUE = canary('UPDATE');
  let ref: string;

  before(async () => {
    t = await testBroker();
    ref = (await t.vault.createSecret({ name: 'UPDATE_KEY', value: Buffer.from(VALUE) })).ref;
    await t.definitions.createCredential({ name: 'acme', provider: 'acme', auth: HEADER, secretRefs: { secret: ref }, hosts: ['api.acme.test'] });
    await t.definitions.createCapability({ id: 'acme/read', provider: 'acme', credential: 'acme', methods: ['GET'], pathPrefixes: ['/v1'], hosts: [] });
  });
  after(() => t.close());

  const audits = async (action: string) => (await t.vault.audit.list({})).filter((r) => r.action === action);

  it('refuses what create refuses, with the same code, field and message', async () => {
    for (const [field, value] of [['hosts', ['Not A Host!']], ['hosts', []], ['secretRefs', { nope: ref }], ['auth', { header: {} }]] as const) {
      const created = await failure(t.definitions.createCredential({ name: 'other', provider: 'acme', auth: HEADER, secretRefs: { secret: ref }, hosts: ['api.acme.test'], [field]: value }));
      const updated = await failure(t.definitions.updateCredential('acme', { [field]: value }));
      assert.deepEqual([updated.code, updated.field, updated.message], [created.code, created.field, created.message], field);
    }
    const wrongMethod = await failure(t.definitions.updateCapability('acme/read', { methods: ['FETCH'] }));
    assert.deepEqual([wrongMethod.code, wrongMethod.field], ['INVALID_ARGUMENT', 'methods']);
    const outside = await failure(t.definitions.updateCapability('acme/read', { hosts: ['elsewhere.test'] }));
    assert.deepEqual([outside.code, outside.field], ['INVALID_ARGUMENT', 'hosts']);
    assert.deepEqual((await t.vault.storage.getCredential('acme'))!.hosts, ['api.acme.test'], 'nothing was changed');
  });

  it('a secret pinned to a built-in provider cannot be bound by an update either', async () => {
    const pinned = await t.vault.createSecret({ name: 'OPENAI_API_KEY', value: Buffer.from(canary('sk-pinned')) });
    const err = await failure(t.definitions.updateCredential('acme', { secretRefs: { secret: pinned.ref } }));
    assert.deepEqual([err.code, err.field], ['SECRET_PINNED', 'secretRefs']);
  });

  it('a wildcard host kept needs no new acknowledgement; one added does', async () => {
    await t.definitions.updateCredential('acme', { hosts: ['api.acme.test', '*.acme.test'], anyTenant: true });
    await t.definitions.updateCredential('acme', { allowHttp: true });
    const err = await failure(t.definitions.updateCredential('acme', { hosts: ['api.acme.test', '*.acme.test', '*.other.test'] }));
    assert.deepEqual([err.code, err.field], ['INVALID_ARGUMENT', 'anyTenant']);
    assert.match(err.message, /\*\.other\.test/);
    assert.doesNotMatch(err.message, /\*\.acme\.test/);
    await t.definitions.updateCredential('acme', { hosts: ['api.acme.test'], allowHttp: false });
  });

  it('a credential cannot be narrowed under a capability that uses it', async () => {
    const err = await failure(t.definitions.updateCredential('acme', { hosts: ['api2.acme.test'] }));
    assert.deepEqual([err.code, err.field], ['INVALID_ARGUMENT', 'hosts']);
    assert.match(err.message, /capability acme\/read/);
    // In that order it can: widen, move the capability, narrow.
    await t.definitions.updateCredential('acme', { hosts: ['api.acme.test', 'api2.acme.test'] });
    await t.definitions.updateCapability('acme/read', { hosts: ['api2.acme.test'] });
    await t.definitions.updateCredential('acme', { hosts: ['api2.acme.test'] });
    assert.deepEqual((await t.services.catalog.resolveCapability('acme/read')).hosts, ['api2.acme.test']);
  });

  it('is audited with what changed, never a value; an update that changes nothing writes nothing', async () => {
    const rotated = await t.vault.createSecret({ name: 'UPDATE_KEY_TWO', value: Buffer.from(canary('UPDATE_TWO')) });
    await t.definitions.updateCredential('acme', { secretRefs: { secret: rotated.ref }, allowPrivateNetwork: true, hosts: ['api2.acme.test', 'api3.acme.test'] });
    const record = (await audits('credential.update')).at(-1)!;
    assert.equal(record.target, 'credential:acme');
    assert.equal(record.reason, 'bindings {{secret}}; hosts +api3.acme.test; allowPrivateNetwork false->true');
    await t.definitions.updateCapability('acme/read', { methods: ['GET', 'POST'], limits: { timeoutMs: 5000 }, websocket: true });
    assert.equal((await audits('capability.update')).at(-1)!.reason, 'methods +POST; limits {"timeoutMs":5000}; websocket false->true');

    const generation = await t.vault.storage.generation();
    const count = (await t.vault.audit.list({})).length;
    await t.definitions.updateCredential('acme', { allowPrivateNetwork: true, hosts: ['api3.acme.test', 'api2.acme.test'].reverse() });
    await t.definitions.updateCapability('acme/read', { methods: ['post', 'GET'].reverse(), websocket: true });
    assert.equal(await t.vault.storage.generation(), generation);
    assert.equal((await t.vault.audit.list({})).length, count);
    const all = JSON.stringify(await t.vault.audit.list({}));
    assert.equal(all.includes(VALUE), false);
  });

  it('a limit set to null returns to its default; another provider\'s credential is refused', async () => {
    const cap = await t.definitions.updateCapability('acme/read', { limits: { timeoutMs: null, maxResponseBytes: 1024 } });
    assert.equal(cap.limits.timeoutMs, 30_000);
    assert.equal(cap.limits.maxResponseBytes, 1024);
    await t.definitions.createCredential({ name: 'globex', provider: 'globex', auth: HEADER, secretRefs: { secret: ref }, hosts: ['api.globex.test'] });
    const err = await failure(t.definitions.updateCapability('acme/read', { credential: 'globex' }));
    assert.deepEqual([err.code, err.field], ['INVALID_ARGUMENT', 'credential']);
  });

  it('built-in credentials and capabilities are the registry\'s', async () => {
    assert.ok(isAivaultError(await failure(t.definitions.updateCredential('openai', { hosts: ['x.test'] })), 'PROVIDER_RESERVED'));
    assert.ok(isAivaultError(await failure(t.definitions.updateCapability('openai/chat-completions', { methods: ['GET'] })), 'PROVIDER_RESERVED'));
    assert.ok(isAivaultError(await failure(t.definitions.updateCredential('nope', { hosts: ['x.test'] })), 'CREDENTIAL_NOT_FOUND'));
    assert.ok(isAivaultError(await failure(t.definitions.updateCapability('acme/nope', { methods: ['GET'] })), 'CAPABILITY_NOT_FOUND'));
  });

  it('warns, at create and update, of hosts requests will be refused at, naming the field that changes it', async () => {
    const created = await t.definitions.createCredential({ name: 'local', provider: 'local', auth: HEADER, secretRefs: { secret: ref }, hosts: ['127.0.0.1:8080', 'localhost:9000', '[::1]', 'api.local.test'] });
    assert.deepEqual(created.warnings.map((w) => w.field), ['allowPrivateNetwork', 'allowPrivateNetwork', 'allowPrivateNetwork']);
    assert.match(created.warnings[0]!.message, /^127\.0\.0\.1:8080 is a loopback.*allowPrivateNetwork/);
    assert.deepEqual((await t.definitions.updateCredential('local', { allowPrivateNetwork: true })).warnings, []);
    const metadata = await t.definitions.updateCredential('local', { hosts: ['169.254.169.254'] });
    assert.deepEqual(metadata.warnings.map((w) => [w.field, /always refused/.test(w.message)]), [['hosts', true]]);
  });
});
