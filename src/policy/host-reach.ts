// What can be known of a host pattern when it is defined, before any DNS: an IP literal is
// the address the connector will check (address.ts), and `localhost` (with its subdomains,
// RFC 6761) resolves to loopback everywhere. Any other name is judged only when it resolves.

import { classifyAddress, type AddressVerdict } from './address.ts';
import { parseHostPattern } from './hosts.ts';

/** A host's verdict when its pattern alone decides it; undefined for a name DNS decides. */
export function literalVerdict(pattern: string): AddressVerdict | undefined {
  const { name } = parseHostPattern(pattern);
  if (name === 'localhost' || name.endsWith('.localhost')) return 'private';
  const verdict = classifyAddress(name);
  return verdict === 'invalid' ? undefined : verdict;
}

/** A definition that stands, but will not do what its owner expects: the field to look at, and why. */
export interface DefinitionWarning {
  field: string;
  message: string;
}

/** The hosts requests will be refused at, as the address policy will refuse them. */
export function unreachableHosts(hosts: readonly string[], allowPrivateNetwork: boolean): DefinitionWarning[] {
  const out: DefinitionWarning[] = [];
  for (const host of hosts) {
    const verdict = literalVerdict(host);
    if (verdict === 'private' && !allowPrivateNetwork) {
      out.push({ field: 'allowPrivateNetwork', message: `${host} is a loopback, private or link-local address: requests to it are refused unless allowPrivateNetwork is set` });
    } else if (verdict === 'metadata' || verdict === 'never') {
      out.push({ field: 'hosts', message: `${host} is ${verdict === 'metadata' ? 'a cloud metadata address' : 'an address no upstream can be at'}: requests to it are always refused` });
    }
  }
  return out;
}
