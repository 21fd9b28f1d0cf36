// The storage interface every engine implements. Each method is atomic on its own:
// engines run it inside one transaction, so a crash leaves either all of it or none.

export interface VaultMeta {
  /** Random id of this vault; salts key derivation so two vaults never share keys. */
  vaultId: string;
  formatVersion: number;
  /** JSON of the key provider's public configuration (never key material). */
  keyProvider: string;
  /** Base64 HMAC proving a candidate master key is this vault's key. */
  keyCheck: string;
  createdAt: string;
}

export interface SecretRecord {
  id: string;
  name: string;
  scope: string;
  description: string | null;
  pinnedProvider: string | null;
  currentVersion: number;
  createdAt: string;
  updatedAt: string;
}

export interface SecretVersionRecord {
  secretId: string;
  version: number;
  /** The per-version data key, sealed under the key-encryption key. */
  wrappedKey: Uint8Array;
  /** The secret value, sealed under the data key. */
  ciphertext: Uint8Array;
  /** Keyed, truncated digest of the value, for people to tell versions apart. */
  fingerprint: string;
  createdAt: string;
}

export interface SecretFilter {
  scope?: string;
  name?: string;
  pinnedProvider?: string;
}

export interface Storage {
  readonly engine: string;
  readMeta(): Promise<VaultMeta | undefined>;
  /** Writes the vault's meta once; fails with VAULT_ALREADY_INITIALIZED after that. */
  initialize(meta: VaultMeta): Promise<void>;

  listSecrets(filter?: SecretFilter): Promise<SecretRecord[]>;
  getSecret(id: string): Promise<SecretRecord | undefined>;
  listSecretVersions(secretId: string): Promise<SecretVersionRecord[]>;
  getSecretVersion(secretId: string, version: number): Promise<SecretVersionRecord | undefined>;

  /** Inserts the secret with its first version; SECRET_ALREADY_EXISTS if (name, scope) is taken. */
  createSecret(secret: SecretRecord, first: SecretVersionRecord): Promise<void>;
  /**
   * Adds a version and makes it current, keeping the version that was current before it
   * and removing any older one. Fails if the secret's current version is no longer
   * `expectedCurrent` (a concurrent rotation won).
   */
  rotateSecret(secretId: string, expectedCurrent: number, next: SecretVersionRecord, updatedAt: string): Promise<void>;
  /** Makes `version` (which must exist) current. */
  setCurrentVersion(secretId: string, expectedCurrent: number, version: number, updatedAt: string): Promise<void>;
  /** Returns false when no such secret existed. */
  deleteSecret(secretId: string): Promise<boolean>;

  close(): Promise<void>;
}
