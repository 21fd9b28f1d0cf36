// A key provider yields the vault's 32-byte master key. Its public configuration
// (never key material) is recorded in the vault's meta at init.

export type KeyProviderKind = 'passphrase' | 'keyfile' | 'env';
export const KEY_PROVIDER_KINDS: readonly KeyProviderKind[] = ['passphrase', 'keyfile', 'env'];

export interface Argon2idParams {
  algorithm: 'argon2id';
  /** Memory in KiB. */
  memory: number;
  passes: number;
  parallelism: number;
  /** Base64 salt, 16 random bytes. */
  salt: string;
}

export type KeyProviderConfig =
  | { kind: 'passphrase'; kdf: Argon2idParams }
  | { kind: 'keyfile'; path: string }
  | { kind: 'env'; variable: string };

export interface KeyProviderContext {
  /** The vault directory; relative key-file paths resolve against it. */
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Asks for the passphrase (TTY prompt or AIVAULT_PASSPHRASE); `confirm` asks twice at init. */
  readPassphrase(opts: { confirm: boolean }): Promise<string>;
}

export interface CreatedKey {
  config: KeyProviderConfig;
  masterKey: Buffer;
}
