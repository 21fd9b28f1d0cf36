// A wildcard host (`*.supabase.co`) says which hosts can exist, not which are the owner's: on
// a multi-tenant service anyone can make one (a project, a store, a site) and receive what is
// sent there. A key is for the owner's tenant, so a request that reaches a host only through a
// wildcard goes out only if the owner bound that host as a tenant.

import { AivaultError } from '../errors.ts';
import type { EndpointOverride } from '../storage/types.ts';
import { canonicalHostname, hostnameMatches, parseHostPattern } from './hosts.ts';

export const isWildcard = (pattern: string): boolean => pattern.startsWith('*.');

/**
 * Refuses `hostname` unless an exact host pattern admits it, or a wildcard does and the owner
 * bound it as one of that wildcard's tenants. `tenants`: wildcard -> bound hosts.
 */
export function assertTenant(hosts: readonly string[], tenants: ReadonlyMap<string, readonly string[]>, hostname: string): void {
  const host = canonicalHostname(hostname);
  if (hosts.some((h) => !isWildcard(h) && hostnameMatches(parseHostPattern(h), host))) return;
  const slots = hosts.filter((h) => isWildcard(h) && hostnameMatches(parseHostPattern(h), host));
  if (slots.some((w) => tenants.get(w)?.includes(host))) return;
  const bound = slots.flatMap((w) => tenants.get(w) ?? []);
  if (bound.length === 0) {
    throw new AivaultError('CREDENTIAL_NOT_READY', `${host.slice(0, 253)} is reached through ${slots[0] ?? 'a wildcard'}, and no tenant of it is bound to this credential: bind the owner's own host first`);
  }
  throw new AivaultError('HOST_NOT_ALLOWED', `${host.slice(0, 253)} is not a tenant this credential is bound to (${bound.join(', ')})`);
}

/**
 * An endpoint override's host entries: an exact host maps to the host[:port] contacted instead;
 * a wildcard host (`*.supabase.co`) lists, comma-separated, the tenants the owner bound.
 */
export function splitOverride(override: EndpointOverride | undefined): { hostMap: Map<string, string>; tenants: Map<string, string[]> } {
  const hostMap = new Map<string, string>();
  const tenants = new Map<string, string[]>();
  for (const [from, to] of Object.entries(override?.hosts ?? {})) {
    if (isWildcard(from)) tenants.set(from, to.split(','));
    else hostMap.set(from, to);
  }
  return { hostMap, tenants };
}
