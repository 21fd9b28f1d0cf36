// The storage conformance suite against PostgreSQL (the machine's server; a fresh schema each).
import assert from 'node:assert/strict';
import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { POSTGRES_SCHEMA_VERSION, PostgresStorage } from '../../src/storage/postgres.ts';
import pg from 'pg';
import { createStateSealer, stateProblems } from '../../src/vault/seal.ts';
import { adminQuery, dropSchema, freshSchema, PG_BASE_URL, schemaUrl } from '../helpers/postgres.ts';
import { conformance, type EngineUnderTest } from './conformance.ts';

/** The suite on a fresh schema of the database at `base` (a postgres:// URL). */
function onDatabase(base: () => Promise<string>): EngineUnderTest {
  return {
    async open() {
      const schema = freshSchema('conf');
      const url = new URL(await base());
      url.searchParams.set('schema', schema);
      const storage = await PostgresStorage.connect(url.href, { create: true });
      await storage.initialize({ vaultId: randomUUID(), formatVersion: 1, keyProvider: '{}', keyCheck: 'x', createdAt: new Date().toISOString() });
      const opened: PostgresStorage[] = [storage];
      const admin = async (sql: string) => {
        const client = new pg.Client({ connectionString: await base() });
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end();
        }
      };
      return {
        storage,
        second: async () => {
          const s = await PostgresStorage.connect(url.href);
          opened.push(s);
          return s;
        },
        tamper: (sql: string) => admin(`SET search_path TO ${schema}; ${sql}`),
        cleanup: async () => {
          for (const s of opened) await s.close();
          await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        },
      };
    },
  };
}

conformance('postgres', onDatabase(async () => PG_BASE_URL));

// Text sorts by the database's collation unless told otherwise; SQLite sorts by bytes.
const ICU_DATABASE = `aivault_icu_${randomBytes(4).toString('hex')}`;
let icuDatabase: Promise<string> | undefined;
conformance('postgres, in a database that collates as en-US', onDatabase(() => {
  icuDatabase ??= adminQuery(`CREATE DATABASE ${ICU_DATABASE} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`).then(() => {
    const url = new URL(PG_BASE_URL);
    url.pathname = `/${ICU_DATABASE}`;
    return url.href;
  });
  return icuDatabase;
}));
after(() => adminQuery(`DROP DATABASE IF EXISTS ${ICU_DATABASE} WITH (FORCE)`));

describe('postgres migrations', () => {
  it('replicas starting together on a fresh schema apply each migration once', async () => {
    const schema = freshSchema('mig');
    const url = schemaUrl(schema);
    try {
      const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStorage.connect(url, { create: true })));
      for (const s of stores) await s.close();
      const version = await adminQuery(`SELECT version FROM ${schema}.schema_version`);
      assert.deepEqual(version.rows, [{ version: POSTGRES_SCHEMA_VERSION }]);
      // A later start finds nothing to do, and a newer schema than this code knows is refused.
      await (await PostgresStorage.connect(url)).close();
      await adminQuery(`UPDATE ${schema}.schema_version SET version = version + 1`);
      await assert.rejects(PostgresStorage.connect(url), (e) => isAivaultError(e, 'VAULT_VERSION_UNSUPPORTED'));
    } finally {
      await dropSchema(schema);
    }
  });
});

/** The migration that marks vaults from before state seals (its index in POSTGRES_MIGRATIONS). */
const SEALS_MIGRATION = 6;

describe('postgres vaults from before flags were 0/1 everywhere (schema 7)', () => {
  it('open with their websocket flags as they were, and their state seal still holds', async () => {
    const schema = freshSchema('ws');
    const url = schemaUrl(schema);
    const sealer = createStateSealer(createSecretKey(randomBytes(32)));
    try {
      const storage = await PostgresStorage.connect(url, { create: true });
      storage.useStateSealer(sealer);
      await storage.initialize({ vaultId: randomUUID(), formatVersion: 1, keyProvider: '{}', keyCheck: 'x', createdAt: new Date().toISOString() });
      await storage.createCredential({ name: 'c', provider: 'p', auth: {}, bindings: {}, hosts: [], allowHttp: false, allowPrivateNetwork: false, createdAt: 'T' });
      for (const [id, websocket] of [['p/ws', true], ['p/plain', false]] as const) {
        await storage.createCapability({ id, provider: 'p', credential: 'c', hosts: [], methods: ['GET'], pathPrefixes: ['/'], limits: {}, websocket, createdAt: 'T' });
      }
      await storage.sealState();
      await storage.close();
      // The column as schema 7 left it: BOOLEAN, default false.
      await adminQuery(`ALTER TABLE ${schema}.capabilities ALTER COLUMN websocket DROP DEFAULT;
        ALTER TABLE ${schema}.capabilities ALTER COLUMN websocket TYPE BOOLEAN USING websocket = 1;
        ALTER TABLE ${schema}.capabilities ALTER COLUMN websocket SET DEFAULT false;
        UPDATE ${schema}.schema_version SET version = 7`);
      const reopened = await PostgresStorage.connect(url);
      try {
        assert.deepEqual((await reopened.listCapabilities()).map((c) => [c.id, c.websocket]), [['p/plain', false], ['p/ws', true]]);
        assert.deepEqual(stateProblems(sealer, await reopened.readState()), []);
        const column = await adminQuery(`SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'capabilities' AND column_name = 'websocket'`, [schema]);
        assert.deepEqual(column.rows, [{ data_type: 'integer' }]);
      } finally {
        await reopened.close();
      }
    } finally {
      await dropSchema(schema);
    }
  });
});

describe('postgres tamper evidence', () => {
  // A trigger or rule runs inside the owner's next write (and its seal covers what it did); a view stands in for a table.
  const objects: Array<[string, (schema: string) => string]> = [
    ['trigger', (s) => `CREATE FUNCTION ${s}.sneak() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
      CREATE TRIGGER sneak AFTER UPDATE ON ${s}.meta FOR EACH ROW EXECUTE FUNCTION ${s}.sneak()`],
    ['rule', (s) => `CREATE RULE sneak AS ON UPDATE TO ${s}.agents DO ALSO NOTIFY sneak`],
    ['view', (s) => `CREATE VIEW ${s}.sneak AS SELECT 1 AS x`],
  ];
  for (const [kind, plant] of objects) {
    it(`a ${kind} planted in the vault's schema refuses every connection (VAULT_TAMPERED, naming it)`, async () => {
      const schema = freshSchema('obj');
      const url = schemaUrl(schema);
      try {
        await (await PostgresStorage.connect(url, { create: true })).close();
        await adminQuery(plant(schema));
        await assert.rejects(PostgresStorage.connect(url), (e) => isAivaultError(e, 'VAULT_TAMPERED') && e.message.includes(`${kind} named "sneak"`));
      } finally {
        await dropSchema(schema);
      }
    });
  }

  it("the seals' migration, re-run on a sealed vault, does not mark it for resealing", async () => {
    const schema = freshSchema('reseal');
    const url = schemaUrl(schema);
    try {
      const storage = await PostgresStorage.connect(url, { create: true });
      await storage.initialize({ vaultId: randomUUID(), formatVersion: 1, keyProvider: '{}', keyCheck: 'x', createdAt: new Date().toISOString() });
      await storage.close();
      // Back to the version before the seals' migration (the one after it runs again too).
      await adminQuery(`INSERT INTO ${schema}.meta (key, value) VALUES ('state_seal', '{}'); UPDATE ${schema}.schema_version SET version = ${SEALS_MIGRATION}`);
      await (await PostgresStorage.connect(url)).close();
      assert.equal((await adminQuery(`SELECT 1 FROM ${schema}.meta WHERE key = 'unsealed'`)).rowCount, 0);
    } finally {
      await dropSchema(schema);
    }
  });
});

describe('postgres connection loss', () => {
  it('a connection killed mid-transaction fails that call with STORAGE_UNAVAILABLE, and the process goes on', async () => {
    const schema = freshSchema('kill');
    const storage = await PostgresStorage.connect(schemaUrl(schema), { create: true });
    const blocker = new pg.Client({ connectionString: PG_BASE_URL });
    await blocker.connect();
    try {
      await storage.initialize({ vaultId: randomUUID(), formatVersion: 1, keyProvider: '{}', keyCheck: 'x', createdAt: new Date().toISOString() });
      // Every write bumps the generation row: holding that row keeps the next write's transaction open.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT value FROM ${schema}.meta WHERE key = 'generation' FOR UPDATE`);
      const at = new Date().toISOString();
      const id = randomUUID();
      const writing = storage.createSecret(
        { id, name: 'KILLED', scope: 'global', description: null, pinnedProvider: null, aliases: [], groups: [], allowShort: false, currentVersion: 1, createdAt: at, updatedAt: at },
        { secretId: id, version: 1, wrappedKey: Buffer.from([1]), ciphertext: Buffer.from([2]), fingerprint: 'fp', createdAt: at },
      );
      // Settled while the kill is still being confirmed: hold the outcome from the start.
      const write = writing.then(() => undefined);
      write.catch(() => {});
      let waiting: number[] = [];
      for (let i = 0; i < 200 && waiting.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        const r = await adminQuery("SELECT pid FROM pg_stat_activity WHERE application_name = 'aivault' AND wait_event_type = 'Lock' AND query LIKE '%generation%'");
        waiting = r.rows.map((row: { pid: number }) => row.pid);
      }
      assert.equal(waiting.length, 1, 'the write is waiting inside its transaction');
      await adminQuery('SELECT pg_terminate_backend($1)', [waiting[0]]);
      await assert.rejects(write, (e) => isAivaultError(e, 'STORAGE_UNAVAILABLE'));
      await blocker.query('ROLLBACK');
      // Nothing was written, and the pool opens a new connection for the next call.
      assert.equal(await storage.getSecret(id), undefined);
      await storage.createSecret(
        { id, name: 'KILLED', scope: 'global', description: null, pinnedProvider: null, aliases: [], groups: [], allowShort: false, currentVersion: 1, createdAt: at, updatedAt: at },
        { secretId: id, version: 1, wrappedKey: Buffer.from([1]), ciphertext: Buffer.from([2]), fingerprint: 'fp', createdAt: at },
      );
      assert.equal((await storage.getSecret(id))?.name, 'KILLED');
    } finally {
      await blocker.end();
      await storage.close();
      await dropSchema(schema);
    }
  });
});
