// The addresses and ports this process itself listens on (the daemon's TCP listeners). No
// credential may point aivault at itself, whatever private targets the owner allowed: an
// invoke that reached our own API would answer with aivault's authority, not the upstream's.

import { embeddedIPv4 } from './address.ts';

const listeners = new Set<string>();

/** One spelling per address: IPv4-mapped IPv6 as its IPv4 address, IPv6 lower-case. */
function key(address: string, port: number): string {
  const mapped = /^::ffff:/i.test(address) ? embeddedIPv4(address)[0] : undefined;
  return `${(mapped ?? address).toLowerCase()} ${port}`;
}

export function addOwnListener(address: string, port: number): void {
  listeners.add(key(address, port));
}

export function removeOwnListener(address: string, port: number): void {
  listeners.delete(key(address, port));
}

export function isOwnListener(address: string, port: number): boolean {
  return listeners.size > 0 && listeners.has(key(address, port));
}
