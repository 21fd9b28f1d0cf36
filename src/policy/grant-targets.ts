// What one word of `aivault grant AGENT …` names: a capability (or flow) by its id, or
// `PROVIDER/*`, every capability of one provider as it exists when the grant is made. A
// pattern is expanded there and then into one grant per capability; it is never stored, so
// nothing created later (a custom capability, a registry update) is granted without the
// owner naming it. No other wildcard exists: capability ids never contain `*`.

import { AivaultError } from '../errors.ts';

export type GrantTarget = { id: string } | { provider: string };

const PROVIDER_PATTERN = /^([^/*]+)\/\*$/;

/** Parses one word of a grant; a `*` anywhere but in `PROVIDER/*` is refused. */
export function grantTarget(text: string): GrantTarget {
  if (!text.includes('*')) return { id: text };
  const provider = PROVIDER_PATTERN.exec(text)?.[1];
  if (provider === undefined) {
    throw new AivaultError('INVALID_ARGUMENT', `"${text.slice(0, 130)}" is not a capability id or PROVIDER/* (all of one provider's capabilities); no other wildcard is taken`);
  }
  return { provider };
}

/** The provider part of a capability id (`provider/name`; every capability's id starts with its provider). */
export function providerOf(id: string): string {
  return id.split('/')[0]!;
}

/** Whether granting `target` covers `capability`: its id, or for `PROVIDER/*` any capability of that provider. */
export function covers(target: GrantTarget, capability: { id: string; provider: string }): boolean {
  return 'id' in target ? capability.id === target.id : capability.provider === target.provider;
}
