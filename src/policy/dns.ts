// Resolution that cannot be switched under us: every address a name resolves to is
// checked, and the socket connects to one of those checked addresses (the lookup we
// hand to the connector IS the resolution), so DNS rebinding has no second lookup to win.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { AivaultError } from '../errors.ts';
import { classifyAddress } from './address.ts';
import { isOwnListener } from './own-listeners.ts';

export interface AddressPolicy {
  allowPrivateNetwork: boolean;
  /** The port to be connected to, when known: aivault's own listeners are refused. */
  port?: number;
}

const REFUSED: Record<'metadata' | 'never' | 'private' | 'invalid', string> = {
  metadata: 'the host resolves to a cloud metadata address (or an IPv6 form embedding one), which is always refused',
  never: 'the host resolves to an address no upstream can be at (unspecified, broadcast, multicast or reserved), which is always refused',
  private: 'the host resolves to a loopback, private or link-local address; the owner did not allow private targets (allowPrivateNetwork)',
  invalid: 'the host resolves to something that is not an IP address',
};

/** Throws PRIVATE_ADDRESS_BLOCKED unless `address` may be connected to under `policy`. */
export function assertAddressAllowed(address: string, policy: AddressPolicy): void {
  const verdict = classifyAddress(address);
  if (verdict !== 'public' && !(verdict === 'private' && policy.allowPrivateNetwork)) {
    throw new AivaultError('PRIVATE_ADDRESS_BLOCKED', REFUSED[verdict]);
  }
  if (policy.port !== undefined && isOwnListener(address, policy.port)) {
    throw new AivaultError('PRIVATE_ADDRESS_BLOCKED', "the host and port are aivault's own listening address, which is always refused");
  }
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
