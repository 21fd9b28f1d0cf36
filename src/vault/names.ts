// Canonical secret names and scopes. Names are what `secrets create` takes as the name and
// what the registry's `vaultSecrets` keys use, so one rule serves both.

import { AivaultError } from '../errors.ts';

export const SECRET_NAME_RULE = 'an upper-case letter, then up to 127 upper-case letters, digits or underscores (e.g. OPENAI_API_KEY)';
const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,127}$/;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

export function assertSecretName(name: string): void {
  if (!isSecretName(name)) {
    throw new AivaultError('INVALID_NAME', `invalid secret name: use ${SECRET_NAME_RULE}`);
  }
}

export { GLOBAL_SCOPE, SCOPE_RULE, assertScope } from './scopes.ts';

export const SECRET_REF_PREFIX = 'vault:secret:';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isSecretId(value: string): boolean {
  return UUID.test(value);
}

export function secretRef(id: string): string {
  return `${SECRET_REF_PREFIX}${id}`;
}

/** Returns the id of a `vault:secret:<id>` reference, or undefined if `value` is not one. */
export function parseSecretRef(value: string): string | undefined {
  if (!value.startsWith(SECRET_REF_PREFIX)) return undefined;
  const id = value.slice(SECRET_REF_PREFIX.length);
  if (!isSecretId(id)) throw new AivaultError('INVALID_ARGUMENT', `"${SECRET_REF_PREFIX}" must be followed by a secret id`);
  return id;
}
