// The vault: secrets are written, rotated and deleted here, and read back in plaintext
// only by the broker (revealSecret), never by a command that prints.

import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OWNER_LOCAL, currentActor } from '../audit/actor.ts';
import { AuditLog, type AuditDraft, type ChangeDraft } from '../audit/log.ts';
import { sqliteAuditWriter, type AuditDurability } from '../audit/writer.ts';
import { createSealer } from '../audit/chain.ts';
import { AivaultError } from '../errors.ts';
import { builtinRegistry, type Registry } from '../registry/registry.ts';
import { SqliteStorage } from '../storage/sqlite.ts';
import { STORAGE_FILE, connectPostgres, databaseUrlFor, recordDatabaseUrl } from '../storage/open.ts';
import { redactDatabaseUrl } from '../storage/postgres.ts';
import type { Rekey, SecretRecord, SecretVersionMeta, SecretWrite, StateSealer, Storage } from '../storage/types.ts';
import { openSecret, rewrapDataKey, sealSecret } from './envelope.ts';
import { PLANTED_UNSEALED_MARK, awaitsFirstSeal, createStateSealer, stateProblems } from './seal.ts';
import {
  createMasterKey,
  parseKeyProviderConfig,
  unlockMasterKey,
  type CreateKeyOptions,
  type KeyProviderConfig,
  type KeyProviderContext,
  type KeyProviderKind,
} from './key-providers/index.ts';
import { computeKeyCheck, deriveVaultKeys, fingerprintValue, keyCheckMatches, keysFromKeyring, sealKeyring, unlockVaultKeys, type VaultKeys } from './keys.ts';
import { assertSecretName, isSecretId, parseSecretRef, secretRef } from './names.ts';
import { assertOwnedPrivate } from './owned.ts';
import { GLOBAL_SCOPE, assertScope, groupKey } from './scopes.ts';
import { MIN_SECRET_LENGTH, assertStorableValue, assertValue } from './values.ts';

export const VAULT_FORMAT_VERSION = 1;
export const DATABASE_FILE = 'vault.db';
/** Compares and proofs allowed per secret per minute (an oracle must not be a brute-force tool). */
export const PROBES_PER_MINUTE = 10;

export interface VaultLocation {
  dir: string;
  env?: NodeJS.ProcessEnv;
  readPassphrase?: KeyProviderContext['readPassphrase'];
  /**
   * Opened to be checked (`secrets verify`, `audit verify`): a vault found tampered with on
   * open is opened anyway, so the check can report it, instead of refused.
   */
  toVerify?: boolean;
}

export interface InitOptions extends VaultLocation {
  keyProvider: KeyProviderKind;
  keyFile?: string;
  /** A postgres:// URL: the vault lives in that database (the directory keeps key files and storage.json). */
  databaseUrl?: string;
}

export interface SecretVersionInfo {
  version: number;
  fingerprint: string;
  createdAt: string;
  current: boolean;
}

/** Everything about a secret that may be shown: metadata, never the value. */
export interface SecretInfo {
  id: string;
  ref: string;
  name: string;
  scope: string;
  description: string | null;
  pinnedProvider: string | null;
  aliases: string[];
  /** Groups (`W/G`) a global secret is attached to. */
  groups: string[];
  /** The owner accepted a value shorter than the scrubber protects. */
  allowShort: boolean;
  currentVersion: number;
  fingerprint: string;
  versions: SecretVersionInfo[];
  createdAt: string;
  updatedAt: string;
}

export interface CreateSecretInput {
  name: string;
  value: Uint8Array;
  scope?: string;
  description?: string | null;
  pinnedProvider?: string | null;
  aliases?: string[];
  /** Accepts a value shorter than MIN_SECRET_LENGTH (which the scrubber cannot protect). */
  allowShort?: boolean;
}

export interface UpdateSecretInput {
  name?: string;
  /** Added to the secret's aliases. */
  aliases?: string[];
  clearAliases?: boolean;
}

/** Aliases are lower-case labels, so they never collide with canonical (upper-case) names. */
const ALIAS = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MAX_ALIASES = 16;

function checkAliases(aliases: readonly string[]): string[] {
  const unique = [...new Set(aliases)];
  if (unique.length > MAX_ALIASES) throw new AivaultError('INVALID_ARGUMENT', `at most ${MAX_ALIASES} aliases`);
  for (const a of unique) if (!ALIAS.test(a)) throw new AivaultError('INVALID_NAME', 'an alias is 1-64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit');
  return unique;
}

export interface SecretCheck {
  id: string;
  name: string;
  scope: string;
  ok: boolean;
  code?: string;
}

/** What `secrets verify` finds: faults of the vault as a whole, then each secret's. */
export interface VaultCheck {
  /** The storage engine's own check, the state against its seal, the audit anchor against the log; empty when sound. */
  problems: string[];
  checks: SecretCheck[];
}

/** What a failed check read is reported as: a hostile row may make the code throw anything (its message is not shown). */
function findingCode(err: unknown): string {
  return err instanceof AivaultError ? err.code : 'VAULT_TAMPERED';
}

/** A damaged file read mid-check is a finding, not a reason to stop checking. */
async function finding<T>(problems: string[], what: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AivaultError && err.code !== 'VAULT_CORRUPTED') throw err;
    problems.push(`${what}: ${err instanceof AivaultError ? err.message : 'unreadable: a row has a shape aivault never writes'}`);
    return undefined;
  }
}

function defaultPassphraseReader(env: NodeJS.ProcessEnv): KeyProviderContext['readPassphrase'] {
  return async () => {
    const value = env.AIVAULT_PASSPHRASE;
    if (value === undefined) throw new AivaultError('VAULT_LOCKED', 'the vault is locked: set AIVAULT_PASSPHRASE or run from a terminal');
    return value;
  };
}

function context(location: VaultLocation): KeyProviderContext {
  const env = location.env ?? process.env;
  return { dir: location.dir, env, readPassphrase: location.readPassphrase ?? defaultPassphraseReader(env) };
}

function assertDescription(description: string | null | undefined): void {
  if (description != null && (description.length > 1024 || /[\u0000-\u001f\u007f]/.test(description))) {
    throw new AivaultError('INVALID_ARGUMENT', 'a description is at most 1024 characters with no control characters');
  }
}

/**
 * The vault directory holds the database and usually the key file: another user who owns it,
 * or can write it, can swap either (a planted key, a planted vault). Checked on what the
 * path leads to (a link to a private directory of ours is fine).
 */
function assertPrivateDir(dir: string): void {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new AivaultError('VAULT_DIR_INSECURE', `the vault directory ${dir} is not a directory`);
  assertOwnedPrivate(st, `the vault directory ${dir}`, 'VAULT_DIR_INSECURE', '700');
}

/** What the owner sees of a secret: its metadata and its versions', never a value. */
function secretInfo(record: SecretRecord, versions: readonly SecretVersionMeta[]): SecretInfo {
  const current = versions.find((v) => v.version === record.currentVersion);
  if (!current) throw new AivaultError('VAULT_CORRUPTED', `the current version of ${record.name} is missing`);
  return {
    id: record.id,
    ref: secretRef(record.id),
    name: record.name,
    scope: record.scope,
    description: record.description,
    pinnedProvider: record.pinnedProvider,
    aliases: record.aliases,
    groups: record.groups,
    allowShort: record.allowShort,
    currentVersion: record.currentVersion,
    fingerprint: current.fingerprint,
    versions: versions.map((v) => ({ version: v.version, fingerprint: v.fingerprint, createdAt: v.createdAt, current: v.version === record.currentVersion })),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

function now(): string {
  return new Date().toISOString();
}

export class Vault {
  readonly dir: string;
  readonly storage: Storage;
  readonly vaultId: string;
  #keyProvider: KeyProviderConfig;
  readonly audit: AuditLog;
  #keys: VaultKeys;
  /** The key check of the master key this process unlocked with; secret writes carry it. */
  #keyCheck: string;
  /** Which provider owns which canonical secret name (pins); the built-in registry unless a broker says otherwise. */
  #registry: Registry | undefined;
  readonly #stateSealer: StateSealer;

  private constructor(dir: string, storage: Storage, vaultId: string, keyProvider: KeyProviderConfig, keys: VaultKeys, keyCheck: string) {
    this.dir = dir;
    this.storage = storage;
    this.vaultId = vaultId;
    this.#keyProvider = keyProvider;
    this.#keys = keys;
    this.#keyCheck = keyCheck;
    this.audit = new AuditLog(storage, keys.audit);
    // The state key is derived from the audit key, which a master-key rotation keeps.
    this.#stateSealer = createStateSealer(keys.state);
    storage.useStateSealer(this.#stateSealer);
  }

  get keyProvider(): KeyProviderConfig {
    return this.#keyProvider;
  }

  /**
   * Runs an owner change with its audit record written first (so a change that cannot be
   * audited does not happen), then records how it ended. A change that does several things
   * (a batch) takes a record for each, all written first.
   */
  async audited<T>(draft: ChangeDraft | readonly ChangeDraft[], change: () => Promise<T>): Promise<T> {
    const drafts: readonly ChangeDraft[] = Array.isArray(draft) ? draft : [draft as ChangeDraft];
    const seqs = await Promise.all(drafts.map((draft) => this.audit.append({ ...draft, actor: draft.actor ?? currentActor() ?? OWNER_LOCAL, decision: 'allow' })));
    try {
      const result = await change();
      for (const seq of seqs) this.audit.complete(seq, {});
      return result;
    } catch (err) {
      for (const seq of seqs) this.audit.complete(seq, { error: err instanceof AivaultError ? err.code : 'INTERNAL_ERROR' });
      throw err;
    }
  }

  /** Where the data lives, for people: the SQLite file, or the server URL without its password. */
  static describeLocation(dir: string, env: NodeJS.ProcessEnv = process.env): string {
    const url = databaseUrlFor(resolve(dir), env);
    return url ? redactDatabaseUrl(url) : Vault.databasePath(dir);
  }

  static databasePath(dir: string): string {
    return join(resolve(dir), DATABASE_FILE);
  }

  /** Creates a new vault directory (mode 0700), its key and its database. */
  static async init(options: InitOptions): Promise<Vault> {
    const dir = resolve(options.dir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    assertPrivateDir(dir);
    const dbPath = Vault.databasePath(dir);
    if (existsSync(dbPath) || existsSync(join(dir, STORAGE_FILE))) throw new AivaultError('VAULT_ALREADY_INITIALIZED', `a vault already exists in ${dir}`);
    const databaseUrl = options.databaseUrl;
    const created = await createMasterKey(context({ ...options, dir }), { kind: options.keyProvider, ...(options.keyFile ? { keyFile: options.keyFile } : {}) });
    const vaultId = randomUUID();
    let storage: Storage;
    try {
      if (databaseUrl) {
        storage = await connectPostgres(databaseUrl, true);
      } else {
        // Create the file 0600 ourselves: SQLite then gives its WAL and shared-memory files the same mode.
        closeSync(openSync(dbPath, 'wx', 0o600));
        storage = SqliteStorage.open(dbPath, { create: true });
      }
    } catch (err) {
      created.masterKey.fill(0);
      throw err;
    }
    try {
      await storage.initialize({
        vaultId,
        formatVersion: VAULT_FORMAT_VERSION,
        keyProvider: JSON.stringify(created.config),
        keyCheck: computeKeyCheck(created.masterKey, vaultId),
        createdAt: now(),
      });
      if (databaseUrl) recordDatabaseUrl(dir, databaseUrl);
      const keys = deriveVaultKeys(created.masterKey, vaultId);
      const vault = new Vault(dir, storage, vaultId, created.config, keys, computeKeyCheck(created.masterKey, vaultId));
      // A vault has records from its first moment: an empty log is then always a cleared one.
      await vault.audited({ action: 'vault.init', target: `vault:${vaultId}` }, () => storage.sealState());
      return vault;
    } catch (err) {
      await storage.close();
      throw err;
    } finally {
      created.masterKey.fill(0);
    }
  }

  /** Opens and unlocks an existing vault. A wrong key is refused before anything is written. */
  static async open(location: VaultLocation): Promise<Vault> {
    const dir = resolve(location.dir);
    if (existsSync(dir)) assertPrivateDir(dir);
    const databaseUrl = databaseUrlFor(dir, location.env ?? process.env);
    const storage: Storage = databaseUrl ? await connectPostgres(databaseUrl, false) : SqliteStorage.open(Vault.databasePath(dir));
    try {
      const meta = await storage.readMeta();
      if (!meta) throw new AivaultError('VAULT_CORRUPTED', 'the vault database holds no vault metadata');
      if (meta.formatVersion !== VAULT_FORMAT_VERSION) {
        throw new AivaultError('VAULT_VERSION_UNSUPPORTED', `this vault has format ${meta.formatVersion}; this aivault reads format ${VAULT_FORMAT_VERSION}`);
      }
      const keyProvider = parseKeyProviderConfig(meta.keyProvider);
      const master = await unlockMasterKey(keyProvider, context({ ...location, dir }));
      try {
        if (!keyCheckMatches(master, meta.vaultId, meta.keyCheck)) {
          throw new AivaultError('VAULT_KEY_MISMATCH', 'the key does not open this vault (wrong passphrase, key file or AIVAULT_MASTER_KEY)');
        }
        const vault = new Vault(dir, storage, meta.vaultId, keyProvider, unlockVaultKeys(master, meta.vaultId, meta.keyring), meta.keyCheck);
        if (meta.unsealed) await vault.#sealFirst(location.toVerify === true);
        else if (location.toVerify !== true) await vault.#assertSealed();
        return vault;
      } finally {
        master.fill(0);
      }
    } catch (err) {
      await storage.close();
      throw err;
    }
  }

  /**
   * A vault from before seals is sealed (and its log anchored) by its first unlock: what was
   * changed before that cannot be told apart from the owner's doing. Only the true pre-seal
   * form qualifies (the mark, no seal, no anchor, a log from before anchors); the mark on any
   * other vault is tampering, refused (left for `verify` to report) and never resealed.
   */
  async #sealFirst(toVerify: boolean): Promise<void> {
    const reading = await this.storage.readState();
    // A vault that did anything has records: an emptied log is no sign of age but of tampering.
    const hasHistory = (await this.audit.list({ limit: 1 })).length > 0;
    if (awaitsFirstSeal(reading) && hasHistory && (await this.audit.anchorProblem()) === undefined) {
      await this.audited({ action: 'vault.seal', target: `vault:${this.vaultId}` }, () => this.storage.sealState());
    } else if (!toVerify) {
      throw new AivaultError('VAULT_TAMPERED', `${PLANTED_UNSEALED_MARK}; run \`aivault secrets verify\` and restore the vault from a backup`);
    }
  }

  /**
   * Every open checks the state against its seal before anything can write: a write reseals
   * the state as it finds it, so a change made outside aivault is refused here rather than
   * covered by the owner's next change. (A process that opened the vault earlier, a running
   * daemon, checks again only when it restarts; `secrets verify` names what changed.)
   */
  async #assertSealed(): Promise<void> {
    const problems = stateProblems(this.#stateSealer, await this.storage.readState());
    if (problems.length > 0) throw new AivaultError('VAULT_TAMPERED', `the vault's state does not match its seal (${problems.join('; ').slice(0, 300)}); run \`aivault secrets verify\` and restore the vault from a backup`);
  }

  /**
   * For a long-running process (the daemon): commits audit records with the durability chosen
   * (see AuditDurability) through a connection that never blocks the event loop (on another
   * process's lock, or on the disk), so no request waits on another's fsync. Embedded engine
   * only: a database server's commits already leave the loop free, and it has its own
   * durability settings.
   */
  async setAuditDurability(durability: AuditDurability): Promise<void> {
    if (this.storage.engine !== 'sqlite') return;
    await this.audit.useWriter(sqliteAuditWriter(Vault.databasePath(this.dir), durability, createSealer(this.#keys.audit)));
  }

  /**
   * Replaces the master key: a new key from `options` (a new key file, passphrase or
   * environment key), a new random root for the key-encryption and cache keys, every data
   * key rewrapped under the new key-encryption key — all in one storage transaction, so an
   * interrupted rotation leaves the vault opening with the old key, and a finished one with
   * the new key only. The audit and fingerprint keys are kept (sealed in the keyring) so
   * the chain and fingerprints still verify. Other processes holding the old key are
   * refused on their next secret write (VAULT_KEY_MISMATCH) and must reopen the vault.
   */
  async rotateMaster(options: CreateKeyOptions & Pick<VaultLocation, 'env' | 'readPassphrase'>): Promise<{ keyProvider: KeyProviderConfig; versions: number }> {
    return this.audited({ action: 'vault.rotate-master', target: `vault:${this.vaultId}` }, async () => {
      const generation = await this.storage.generation();
      const versions: Rekey['versions'] = [];
      const ring = { root: randomBytes(32), audit: this.#keys.audit.export(), fingerprint: this.#keys.fingerprint.export() };
      const next = keysFromKeyring(ring, this.vaultId);
      for (const record of await this.storage.listSecrets()) {
        for (const v of await this.storage.listSecretVersions(record.id)) {
          versions.push({ secretId: v.secretId, version: v.version, wrappedKey: rewrapDataKey(this.#keys.kek, next.kek, v.secretId, v.version, v.wrappedKey) });
        }
      }
      const created = await createMasterKey(context({ dir: this.dir, ...(options.env ? { env: options.env } : {}), ...(options.readPassphrase ? { readPassphrase: options.readPassphrase } : {}) }), options);
      try {
        const keyCheck = computeKeyCheck(created.masterKey, this.vaultId);
        if (keyCheck === this.#keyCheck) throw new AivaultError('INVALID_ARGUMENT', 'the new master key is the current one; nothing was changed');
        await this.storage.rekey({ keyProvider: JSON.stringify(created.config), keyCheck, keyring: sealKeyring(created.masterKey, this.vaultId, ring), versions }, generation, this.#keyCheck);
        this.#keys = next;
        this.#keyCheck = keyCheck;
        this.#keyProvider = created.config;
        return { keyProvider: created.config, versions: versions.length };
      } finally {
        created.masterKey.fill(0);
        ring.root.fill(0);
        ring.audit.fill(0);
        ring.fingerprint.fill(0);
      }
    });
  }

  /** The key for sealing caches at rest (e.g. OAuth access tokens). */
  get cacheKey(): KeyObject {
    return this.#keys.cache;
  }

  async close(): Promise<void> {
    try {
      await this.audit.close();
    } finally {
      await this.storage.close();
    }
  }

  /** Finds one secret by `vault:secret:<id>`, bare id, or name (with scope when the name exists in several). */
  async resolveSecret(reference: string, scope?: string): Promise<SecretRecord> {
    const id = parseSecretRef(reference) ?? (isSecretId(reference) ? reference : undefined);
    if (id !== undefined) {
      const record = await this.storage.getSecret(id);
      if (!record) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${id}`);
      return record;
    }
    if (scope !== undefined) assertScope(scope);
    if (ALIAS.test(reference)) {
      const byAlias = (await this.storage.listSecrets(scope !== undefined ? { scope } : {})).filter((s) => s.aliases.includes(reference));
      if (byAlias.length === 1) return byAlias[0]!;
      if (byAlias.length > 1) throw new AivaultError('SECRET_AMBIGUOUS', `the alias ${reference} names secrets in several scopes (${byAlias.map((m) => m.scope).join(', ')}); pass scope or the secret id`, { field: 'scope' });
      throw new AivaultError('SECRET_NOT_FOUND', `no secret with the alias ${reference}${scope ? ` in scope ${scope}` : ''}`);
    }
    assertSecretName(reference);
    const matches = await this.storage.listSecrets({ name: reference, ...(scope !== undefined ? { scope } : {}) });
    if (matches.length === 0) throw new AivaultError('SECRET_NOT_FOUND', `no secret named ${reference}${scope ? ` in scope ${scope}` : ''}`);
    if (matches.length > 1) {
      throw new AivaultError('SECRET_AMBIGUOUS', `${reference} exists in several scopes (${matches.map((m) => m.scope).join(', ')}); pass scope or the secret id`, { field: 'scope' });
    }
    return matches[0]!;
  }

  /** Pins secrets by this registry's canonical names (the broker serving this vault sets it). */
  useRegistry(registry: Registry): void {
    this.#registry = registry;
  }

  async #pins(): Promise<Registry> {
    return this.#registry ?? builtinRegistry();
  }

  async createSecret(input: CreateSecretInput): Promise<SecretInfo> {
    const { write, audit } = await this.#createWrite(input);
    await this.audited(audit, () => this.storage.writeSecrets([write], this.#keyCheck));
    return this.describeSecret(write.secret.id);
  }

  /**
   * Stores many secrets in one transaction (`secrets import`): each is checked as
   * createSecret or rotateSecret would, all before any is written, and then all are
   * written or none. A name already stored in the scope is rotated only with `overwrite`.
   */
  async importSecrets(entries: ReadonlyArray<{ name: string; value: Uint8Array }>, options: { scope?: string; overwrite?: boolean; allowShort?: boolean } = {}): Promise<Array<{ info: SecretInfo; action: 'created' | 'rotated' }>> {
    const scope = options.scope ?? GLOBAL_SCOPE;
    assertScope(scope);
    const names = entries.map((e) => e.name);
    if (new Set(names).size !== names.length) throw new AivaultError('INVALID_ARGUMENT', 'a name is given twice; nothing imported');
    const existing = new Map((await this.storage.listSecrets({ scope })).map((r) => [r.name, r]));
    const clashes = names.filter((n) => existing.has(n));
    if (clashes.length > 0 && !options.overwrite) throw new AivaultError('SECRET_ALREADY_EXISTS', `already stored in ${scope}: ${clashes.join(', ')}; give overwrite to rotate them; nothing imported`, { field: 'overwrite' });
    const allow = options.allowShort ? { allowShort: true } : {};
    const planned = await Promise.all(entries.map(({ name, value }) => {
      const record = existing.get(name);
      return record ? this.#rotateWrite(record, value, allow) : this.#createWrite({ name, value, scope, ...allow });
    }));
    await this.audited(planned.map((p) => p.audit), () => this.storage.writeSecrets(planned.map((p) => p.write), this.#keyCheck));
    return Promise.all(planned.map(async ({ write }) => ({ info: await this.describeSecret(write.kind === 'create' ? write.secret.id : write.secretId), action: write.kind === 'create' ? 'created' as const : 'rotated' as const })));
  }

  /** A new secret's records, checked (name, pin, scope, value, description), and its audit draft. */
  async #createWrite(input: CreateSecretInput): Promise<{ write: Extract<SecretWrite, { kind: 'create' }>; audit: { action: string; target: string } }> {
    assertSecretName(input.name);
    // A name claimed by a built-in provider is pinned to it, always: the pin is what lets
    // the registry's credential use the secret, and nothing can move it elsewhere later.
    const owner = (await this.#pins()).ownerOfSecret(input.name);
    if (input.pinnedProvider != null && input.pinnedProvider !== owner?.provider) {
      throw new AivaultError('SECRET_PINNED', `${input.name} cannot be pinned to ${input.pinnedProvider}`);
    }
    const scope = input.scope ?? GLOBAL_SCOPE;
    assertScope(scope);
    assertStorableValue(input.value, input.allowShort === true, input.name);
    assertDescription(input.description);
    const id = randomUUID();
    const at = now();
    const sealed = sealSecret(this.#keys.kek, id, 1, input.value);
    return {
      audit: { action: 'secret.create', target: `secret:${input.name}@${scope}` },
      write: {
        kind: 'create',
        secret: {
          id,
          name: input.name,
          scope,
          description: input.description ?? null,
          pinnedProvider: owner?.provider ?? null,
          aliases: checkAliases(input.aliases ?? []),
          groups: [],
          allowShort: input.allowShort === true,
          currentVersion: 1,
          createdAt: at,
          updatedAt: at,
        },
        first: { secretId: id, version: 1, ...sealed, fingerprint: fingerprintValue(this.#keys.fingerprint, input.value), createdAt: at },
      },
    };
  }

  /**
   * Renames a secret and/or changes its aliases (never its value: that is a rotation).
   * A secret pinned to a registry provider keeps its name (the pin comes from it), and no
   * secret may be renamed to a name a provider owns (that would need a pin).
   */
  async updateSecret(reference: string, change: UpdateSecretInput, scope?: string): Promise<SecretInfo> {
    const record = await this.resolveSecret(reference, scope);
    if (change.name === undefined && change.aliases === undefined && !change.clearAliases) throw new AivaultError('INVALID_ARGUMENT', 'nothing to update: give a name, aliases or clearAliases');
    if (change.name !== undefined && change.name !== record.name) {
      assertSecretName(change.name);
      if (record.pinnedProvider) throw new AivaultError('SECRET_PINNED', `${record.name} is pinned to ${record.pinnedProvider} by its name and cannot be renamed; create a new secret instead`);
      const owner = (await this.#pins()).ownerOfSecret(change.name);
      if (owner) throw new AivaultError('SECRET_PINNED', `${change.name} belongs to the ${owner.provider} provider; create it with secrets create so it is pinned`);
    }
    const aliases = change.aliases !== undefined || change.clearAliases ? checkAliases([...(change.clearAliases ? [] : record.aliases), ...(change.aliases ?? [])]) : undefined;
    const name = change.name !== undefined && change.name !== record.name ? change.name : undefined;
    await this.audited({ action: 'secret.update', target: `secret:${record.name}@${record.scope}${name ? ` -> ${name}` : ''}` }, () =>
      this.storage.updateSecretIdentity(record.id, { ...(name ? { name } : {}), ...(aliases ? { aliases } : {}) }, now()),
    );
    return this.describeSecret(record.id);
  }

  /** Stores a new current version; the version it replaces is kept for rollback. */
  /**
   * Attaches a global secret to a group (`workspace`/`group`), so the group's callers may use
   * it, or detaches it. Workspace and group secrets already serve exactly their own callers.
   */
  async setSecretGroup(reference: string, workspace: string, group: string, attached: boolean, scope?: string): Promise<SecretInfo> {
    const record = await this.resolveSecret(reference, scope);
    const key = groupKey(workspace, group);
    assertScope(`group:${key}`);
    if (record.scope !== GLOBAL_SCOPE) {
      throw new AivaultError('INVALID_SCOPE', `${record.name} is a ${record.scope} secret: only global secrets are attached to groups (a workspace secret already serves every group of its workspace, a group secret only its own)`);
    }
    await this.audited({ action: attached ? 'secret.attach-group' : 'secret.detach-group', target: `secret:${record.name}@${record.scope} group:${key}` }, async () => {
      if (!(await this.storage.setSecretGroup(record.id, key, attached, now()))) {
        throw attached
          ? new AivaultError('GROUP_ALREADY_ATTACHED', `${record.name} is already attached to group ${key}`)
          : new AivaultError('GROUP_NOT_ATTACHED', `${record.name} is not attached to group ${key}`);
      }
    });
    return this.describeSecret(record.id);
  }

  async rotateSecret(reference: string, value: Uint8Array, scope?: string, options: { allowShort?: boolean } = {}): Promise<SecretInfo> {
    assertValue(value); // before the lookup: a bad value is refused whatever the reference
    const record = await this.resolveSecret(reference, scope);
    const { write, audit } = await this.#rotateWrite(record, value, options);
    await this.audited(audit, () => this.storage.writeSecrets([write], this.#keyCheck));
    return this.describeSecret(record.id);
  }

  /** A rotation's new version, checked (value, short-value acknowledgement), and its audit draft. */
  async #rotateWrite(record: SecretRecord, value: Uint8Array, options: { allowShort?: boolean }): Promise<{ write: Extract<SecretWrite, { kind: 'rotate' }>; audit: { action: string; target: string } }> {
    const allowShort = options.allowShort ?? record.allowShort;
    assertStorableValue(value, allowShort, record.name);
    const versions = await this.storage.listSecretVersions(record.id);
    const next = Math.max(record.currentVersion, ...versions.map((v) => v.version)) + 1;
    const at = now();
    const sealed = sealSecret(this.#keys.kek, record.id, next, value);
    return {
      audit: { action: 'secret.rotate', target: `secret:${record.name}@${record.scope}` },
      write: {
        kind: 'rotate',
        secretId: record.id,
        expectedCurrent: record.currentVersion,
        next: { secretId: record.id, version: next, ...sealed, fingerprint: fingerprintValue(this.#keys.fingerprint, value), createdAt: at },
        updatedAt: at,
        ...(allowShort !== record.allowShort ? { allowShort } : {}),
      },
    };
  }

  /** Makes the other kept version current again (rolling back twice undoes the rollback). */
  async rollbackSecret(reference: string, scope?: string): Promise<SecretInfo> {
    const record = await this.resolveSecret(reference, scope);
    const versions = await this.storage.listSecretVersions(record.id);
    const other = versions.filter((v) => v.version !== record.currentVersion).at(-1);
    if (!other) throw new AivaultError('NO_PREVIOUS_VERSION', `${record.name} has no previous version to roll back to`);
    // Refuse to make current a version that would not open.
    openSecret(this.#keys.kek, record.id, other.version, other).fill(0);
    await this.audited({ action: 'secret.rollback', target: `secret:${record.name}@${record.scope}` }, () =>
      this.storage.setCurrentVersion(record.id, record.currentVersion, other.version, now()),
    );
    return this.describeSecret(record.id);
  }

  async deleteSecret(reference: string, scope?: string): Promise<SecretInfo> {
    const info = await this.describeSecret(reference, scope);
    await this.audited({ action: 'secret.delete', target: `secret:${info.name}@${info.scope}` }, async () => {
      if (!(await this.storage.deleteSecret(info.id))) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${info.id}`);
    });
    return info;
  }

  async listSecrets(scope?: string): Promise<SecretInfo[]> {
    if (scope !== undefined) assertScope(scope);
    // One statement however many secrets: no read per secret for its versions.
    const listings = await this.storage.listSecretsWithVersions(scope !== undefined ? { scope } : {});
    return listings.map(({ secret, versions }) => secretInfo(secret, versions));
  }

  async describeSecret(reference: string, scope?: string): Promise<SecretInfo> {
    const record = await this.resolveSecret(reference, scope);
    return secretInfo(record, await this.storage.listSecretVersions(record.id));
  }

  /**
   * The plaintext of a secret's current version (or of a kept one, `version`). The broker calls
   * this to inject a credential, and `run` to keep every value out of its child's environment;
   * the caller owns the buffer and should wipe it when done.
   */
  async revealSecret(id: string, use: { credential?: boolean; version?: number } = {}): Promise<Buffer> {
    const record = await this.storage.getSecret(id);
    if (!record) throw new AivaultError('SECRET_NOT_FOUND', `no secret with id ${id}`);
    const version = await this.storage.getSecretVersion(id, use.version ?? record.currentVersion);
    if (!version) throw new AivaultError('VAULT_CORRUPTED', `version ${use.version ?? record.currentVersion} of ${record.name} is missing`);
    const value = openSecret(this.#keys.kek, id, version.version, version);
    // A credential sends what it reveals, and a short value would come back unscrubbed.
    if (use.credential) {
      if (value.length < MIN_SECRET_LENGTH && !record.allowShort) {
        value.fill(0);
        throw new AivaultError('CREDENTIAL_NOT_READY', `${record.name} holds a value under ${MIN_SECRET_LENGTH} bytes that was not stored as allowed-short: a response could repeat it unscrubbed`);
      }
    }
    return value;
  }

  /**
   * Whether `candidate` equals the secret's current value, compared in constant time (over
   * SHA-256 digests, so not even the length leaks). Audited and limited to
   * `PROBES_PER_MINUTE` per secret, counted from the audit log (so across processes).
   */
  async compareSecret(reference: string, candidate: Uint8Array, scope?: string): Promise<boolean> {
    const record = await this.resolveSecret(reference, scope);
    return this.#probe(record, 'secret.compare', async (value) => timingSafeEqual(createHash('sha256').update(value).digest(), createHash('sha256').update(candidate).digest()));
  }

  /** HMAC-SHA256 of `challenge` keyed by the secret: proves possession without revealing it. */
  async proveSecret(reference: string, challenge: string, scope?: string): Promise<string> {
    if (challenge.length < 8 || challenge.length > 1024) throw new AivaultError('INVALID_ARGUMENT', 'a challenge is 8-1024 characters');
    const record = await this.resolveSecret(reference, scope);
    return this.#probe(record, 'secret.prove', async (value) => createHmac('sha256', value).update(challenge, 'utf8').digest('hex'));
  }

  async #probe<T>(record: SecretRecord, action: string, fn: (value: Buffer) => Promise<T>): Promise<T> {
    const target = `secret:${record.name}@${record.scope}`;
    await this.audit.flush();
    const since = new Date(Date.now() - 60_000).toISOString();
    const recent = (await this.audit.list({ since })).filter((r) => r.target === target && (r.action === 'secret.compare' || r.action === 'secret.prove'));
    if (recent.length >= PROBES_PER_MINUTE) {
      await this.audit.append({ actor: currentActor() ?? OWNER_LOCAL, action, target, decision: 'deny', reason: 'RATE_LIMITED' });
      throw new AivaultError('RATE_LIMITED', `at most ${PROBES_PER_MINUTE} compares or proofs per minute for one secret`);
    }
    return this.audited({ action, target }, async () => {
      const value = await this.revealSecret(record.id);
      try {
        return await fn(value);
      } finally {
        value.fill(0);
      }
    });
  }

  /**
   * The vault as a whole (the engine's own integrity check of its files, and the state
   * against its seal), then every kept version of the given secrets (all when none given).
   */
  async verifySecrets(references: readonly string[] = [], scope?: string): Promise<VaultCheck> {
    const problems: string[] = [];
    for (const message of (await finding(problems, 'storage', () => this.storage.integrityCheck())) ?? []) problems.push(`storage: ${message}`);
    const reading = await finding(problems, 'state', () => this.storage.readState());
    if (reading) problems.push(...stateProblems(this.#stateSealer, reading));
    // A whole older vault.db is a consistent older state: only the audit anchor tells.
    const anchor = await finding(problems, 'audit anchor', async () => { await this.audit.flush(); return this.audit.anchorProblem(); });
    if (anchor) problems.push(`audit anchor: ${anchor}`);
    const records = references.length > 0
      ? await Promise.all(references.map((r) => this.resolveSecret(r, scope)))
      : (await finding(problems, 'secrets', () => this.storage.listSecrets())) ?? [];
    const checks: SecretCheck[] = [];
    for (const record of records) {
      const check: SecretCheck = { id: record.id, name: record.name, scope: record.scope, ok: true };
      try {
        const versions = await this.storage.listSecretVersions(record.id);
        if (!versions.some((v) => v.version === record.currentVersion)) {
          throw new AivaultError('VAULT_CORRUPTED', 'current version missing');
        }
        for (const v of versions) openSecret(this.#keys.kek, record.id, v.version, v).fill(0);
      } catch (err) {
        // Whatever a hostile row makes reading or decrypting throw is a finding, not a crash.
        check.ok = false;
        check.code = findingCode(err);
      }
      checks.push(check);
    }
    return { problems, checks };
  }
}
