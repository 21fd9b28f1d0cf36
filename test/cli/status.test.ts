import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it, mock } from 'node:test';
import { vaultStatus } from '../../src/cli/vault-status.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';
import { StorageCore } from '../../src/storage/core.ts';
import { Vault } from '../../src/vault/vault.ts';

const root = mkdtempSync(join(tmpdir(), 'aivault-status-'));
after(() => rmSync(root, { recursive: true, force: true }));
const env = { AIVAULT_MASTER_KEY: randomBytes(32).toString('base64') };

describe('status', () => {
  it('reports the audit head without walking the chain', async () => {
    const dir = join(root, 'walk');
    const vault = await Vault.init({ dir, keyProvider: 'env', env });
    try {
      await Promise.all(Array.from({ length: 50 }, () => vault.audit.append({ actor: 'agent:a', action: 'invoke', decision: 'allow' })));
      const readAudit = mock.method(StorageCore.prototype, 'readAudit');
      try {
        const status = await vaultStatus(vault, dir, await builtinRegistry());
        assert.equal(readAudit.mock.callCount(), 0, 'status read no audit records');
        assert.deepEqual(status.audit, { records: 51, sealed: true, anchorInStep: true, problem: null, fullCheck: 'aivault audit verify' });
      } finally {
        readAudit.mock.restore();
      }
    } finally {
      await vault.close();
    }
  });

  it('says when the anchor in the vault storage is not in step with the head', async () => {
    const dir = join(root, 'anchor');
    await (await Vault.init({ dir, keyProvider: 'env', env })).close();
    const db = new DatabaseSync(Vault.databasePath(dir));
    db.prepare("DELETE FROM meta WHERE key = 'audit_anchor'").run();
    db.close();
    const vault = await Vault.open({ dir, env });
    try {
      const { audit } = await vaultStatus(vault, dir, await builtinRegistry());
      assert.equal(audit.sealed, true);
      assert.equal(audit.anchorInStep, false);
      assert.match(audit.problem ?? '', /anchor/);
    } finally {
      await vault.close();
    }
  });
});
