// Resolution that cannot be switched under us: every address a name resolves to is
// checked, and the socket connects to one of those checked addresses (the lookup we
// hand to the connector IS the resolution), so DNS rebinding has no second lookup to win.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { AivaultError } from '../errors.ts';
import { classifyAddress } from './address.ts';

export interface AddressPolicy {
  allowPrivateNetwork: boolean;
}

/** Throws PRIVATE_ADDRESS_BLOCKED unless `address` may be connected to under `policy`. */
export function assertAddressAllowed(address: string, policy: AddressPolicy): void {
  const verdict = classifyAddress(address);
  if (verdict === 'public') return;
  if (verdict === 'private' && policy.allowPrivateNetwork) return;
  throw new AivaultError(
    'PRIVATE_ADDRESS_BLOCKED',
    verdict === 'metadata'
      ? 'the host resolves to a cloud metadata address, which is always refused'
      : 'the host resolves to a loopback, private or link-local address; the owner did not allow private targets (--allow-private-network)',
  );
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for net/tls.connect that refuses disallowed addresses. */
export function checkedLookup(policy: AddressPolicy) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0, verbatim: true }, (err, addresses) => {
      if (err) return callback(err, []);
      try {
        if (addresses.length === 0) throw new AivaultError('UPSTREAM_UNREACHABLE', 'the host has no address');
        for (const a of addresses) assertAddressAllowed(a.address, policy);
      } catch (e) {
        return callback(e as NodeJS.ErrnoException, []);
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

export function isIpLiteral(hostname: string): boolean {
  return isIP(hostname) !== 0;
}
