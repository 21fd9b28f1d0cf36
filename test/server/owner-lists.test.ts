// Owner list operations read storage a fixed number of times, however many items they list
// (no read per secret, credential or capability).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runOwnerOperation } from '../../src/owner/operations.ts';
import { capabilityView, credentialView } from '../../src/owner/views.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';
import { composeServices, type Services } from '../../src/services.ts';
import { Vault } from '../../src/vault/vault.ts';
import { countStorageCalls } from '../helpers/counting-storage.ts';

const root = mkdtempSync(join(tmpdir(), 'aivault-lists-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('owner list operations: storage reads do not grow with what they list', () => {
  let vault: Vault;
  let services: Services;
  before(async () => {
    vault = await Vault.init({ dir: root, keyProvider: 'env', env: { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') } });
    services = composeServices(vault, await builtinRegistry());
  });
  after(async () => {
    await services.close();
    await vault.close();
  });

  const value = () => randomBytes(24).toString('base64url');
  let made = 0;
  /**
   * Adds `n` secrets, each with a custom credential bound to it and a capability on that
   * credential, and `n` secrets pinned to built-in providers (which provisions them).
   */
  async function addItems(n: number): Promise<void> {
    const providers = [...services.registry.providers.values()].filter((p) => Object.keys(p.vaultSecrets ?? {}).length > 0);
    for (let i = 0; i < n; i++, made++) {
      await runOwnerOperation(services, 'secrets.create', { name: Object.keys(providers[made]!.vaultSecrets!)[0]!, value: value() });
      const secret = (await runOwnerOperation(services, 'secrets.create', { name: `S_${made}`, value: value() })) as { ref: string };
      if (made % 2 === 0) await runOwnerOperation(services, 'secrets.rotate', { secret: `S_${made}`, value: value() });
      await runOwnerOperation(services, 'credential.create', { name: `c${made}`, provider: `p${made}`, auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: secret.ref }, hosts: [`api${made}.example.com`] });
      await runOwnerOperation(services, 'capability.create', { id: `p${made}/api`, provider: `p${made}`, credential: `c${made}`, methods: ['GET'], pathPrefixes: ['/v1'] });
    }
  }

  /** The storage calls one operation makes, and its result. */
  async function calls(op: string, args: Record<string, unknown> = {}): Promise<{ calls: number; result: unknown[] }> {
    const counter = countStorageCalls(vault);
    try {
      const result = (await runOwnerOperation(services, op, args)) as unknown[];
      return { calls: counter.calls(), result };
    } finally {
      counter.restore();
    }
  }

  for (const op of ['secrets.list', 'credential.list', 'capability.list']) {
    it(`${op}: ten more items, no more reads`, async () => {
      await addItems(2);
      const few = await calls(op);
      await addItems(10);
      const many = await calls(op);
      assert.ok(many.result.length >= few.result.length + 10, 'the second list holds the new items');
      assert.equal(many.calls, few.calls, `${op}: ${few.calls} reads for ${few.result.length} items, ${many.calls} for ${many.result.length}`);
    });
  }

  it('credential.list and capability.list answer what resolving each one alone answers', async () => {
    const credentials = (await runOwnerOperation(services, 'credential.list', {})) as Array<{ name: string; provider: string; source: string }>;
    assert.ok(credentials.some((c) => c.source === 'builtin') && credentials.some((c) => c.source === 'custom'));
    for (const c of credentials) assert.deepEqual(c, credentialView(await services.catalog.describeCredential(c.source === 'builtin' ? c.provider : c.name)));
    const capabilities = (await runOwnerOperation(services, 'capability.list', {})) as Array<{ id: string; source: string }>;
    assert.ok(capabilities.some((c) => c.source === 'builtin') && capabilities.some((c) => c.source === 'custom'));
    for (const c of capabilities) assert.deepEqual(c, capabilityView(await services.catalog.resolveCapability(c.id)));
  });

  it('secrets.list answers what describe answers for each secret', async () => {
    const listed = (await runOwnerOperation(services, 'secrets.list', {})) as Array<{ name: string }>;
    assert.ok(listed.length >= 12);
    for (const s of listed) assert.deepEqual(s, await runOwnerOperation(services, 'secrets.describe', { secret: s.name }));
  });
});
