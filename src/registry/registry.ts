// The compiled built-in registry: providers, capabilities, and which provider owns each
// canonical secret name. Loaded once per process from the generated module, whose digest
// is checked first so an edited module refuses to load.

import { AivaultError } from '../errors.ts';
import { canonicalJson, sha256Hex } from './canonical.ts';
import { authKind, credentialsOf, type AuthKind, type RegistryCapability, type RegistryProvider } from './types.ts';

export interface SecretOwner {
  provider: string;
  placeholder: string;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export class Registry {
  readonly digest: string;
  readonly providers: ReadonlyMap<string, RegistryProvider>;
  readonly capabilities: ReadonlyMap<string, RegistryCapability>;
  readonly #secretOwners: ReadonlyMap<string, SecretOwner>;

  private constructor(digest: string, providers: readonly RegistryProvider[]) {
    this.digest = digest;
    this.providers = new Map(providers.map((p) => [p.provider, p]));
    this.capabilities = new Map(providers.flatMap((p) => p.capabilities.map((c) => [c.id, c] as const)));
    this.#secretOwners = new Map(
      providers.flatMap((p) => credentialsOf(p).flatMap((c) => Object.entries(c.vaultSecrets).map(([name, placeholder]) => [name, { provider: p.provider, placeholder }] as const))),
    );
  }

  /** Checks the source against its digest, then parses it. */
  static fromSource(source: string, expectedDigest: string): Registry {
    if (sha256Hex(source) !== expectedDigest) {
      throw new AivaultError('REGISTRY_TAMPERED', 'the built-in registry does not match its digest; reinstall aivault');
    }
    let parsed: { providers: RegistryProvider[] };
    try {
      parsed = JSON.parse(source) as { providers: RegistryProvider[] };
    } catch {
      throw new AivaultError('REGISTRY_TAMPERED', 'the built-in registry is not valid JSON; reinstall aivault');
    }
    if (canonicalJson(parsed) !== source || !Array.isArray(parsed.providers)) {
      throw new AivaultError('REGISTRY_TAMPERED', 'the built-in registry is not in canonical form; reinstall aivault');
    }
    return new Registry(expectedDigest, deepFreeze(parsed.providers));
  }

  /**
   * A registry of other providers (tests, tools): validated like the built-in files, each
   * file on its own and the set together. REGISTRY_INVALID names every problem.
   */
  static async fromProviders(providers: readonly RegistryProvider[]): Promise<Registry> {
    const { formatIssue, validateProvider, validateProviderSet } = await import('./validate.ts');
    const entries = providers.map((p, i) => ({ file: `provider[${i}]`, provider: p }));
    const issues = entries.flatMap((e) => validateProvider(e.provider, e.file));
    if (issues.length === 0) issues.push(...validateProviderSet(entries));
    if (issues.length > 0) throw new AivaultError('REGISTRY_INVALID', issues.map(formatIssue).join('; '));
    const copy = JSON.parse(JSON.stringify({ providers })) as { providers: RegistryProvider[] };
    const source = canonicalJson(copy);
    return new Registry(sha256Hex(source), deepFreeze(copy.providers));
  }

  /** The provider whose vaultSecrets claim this canonical secret name, if any. */
  ownerOfSecret(name: string): SecretOwner | undefined {
    return this.#secretOwners.get(name);
  }

  provider(id: string): RegistryProvider {
    const p = this.providers.get(id);
    if (!p) throw new AivaultError('PROVIDER_NOT_FOUND', `no built-in provider "${id}"; see aivault registry list`);
    return p;
  }

  authKindOf(provider: string): AuthKind {
    return authKind(this.provider(provider).auth);
  }
}

let builtin: Registry | undefined;

/** The registry shipped with this build (compiled by scripts/build-registry.ts). */
export async function builtinRegistry(): Promise<Registry> {
  if (!builtin) {
    const generated = await import('./generated/builtin-registry.ts');
    builtin = Registry.fromSource(generated.BUILTIN_REGISTRY_SOURCE, generated.BUILTIN_REGISTRY_DIGEST);
  }
  return builtin;
}
