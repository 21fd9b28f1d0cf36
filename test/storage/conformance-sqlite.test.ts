// The storage conformance suite against the embedded SQLite engine.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteStorage } from '../../src/storage/sqlite.ts';
import { conformance } from './conformance.ts';

conformance('sqlite', {
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'aivault-conf-'));
    const path = join(dir, 'vault.db');
    const storage = SqliteStorage.open(path, { create: true });
    await storage.initialize({ vaultId: randomUUID(), formatVersion: 1, keyProvider: '{}', keyCheck: 'x', createdAt: new Date().toISOString() });
    const opened: SqliteStorage[] = [storage];
    return {
      storage,
      second: async () => {
        const s = SqliteStorage.open(path);
        opened.push(s);
        return s;
      },
      tamper: async (sql: string) => {
        const db = new DatabaseSync(path);
        db.exec(`ATTACH DATABASE '${join(dir, 'audit.db')}' AS audit`);
        db.exec(sql);
        db.close();
      },
      cleanup: async () => {
        for (const s of opened) await s.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
