// Which IP addresses an upstream may resolve to. Four verdicts, strictest first:
//   metadata  cloud metadata endpoints, also inside every IPv6 form that embeds an IPv4
//             address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo): refused always;
//   never     addresses no upstream lives at (unspecified, which reaches this host on Linux;
//             broadcast, multicast, reserved), embedded or not: refused always;
//   private   loopback, RFC 1918, link-local, CGNAT, ULA and the translation ranges
//             themselves: refused unless the owner allowed private targets;
//   public    everything else.

import { BlockList, isIP } from 'node:net';

function list(entries: ReadonlyArray<readonly [string, number, 'ipv4' | 'ipv6']>): BlockList {
  const b = new BlockList();
  for (const [net, prefix, family] of entries) b.addSubnet(net, prefix, family);
  return b;
}

/** No upstream lives here; `0.0.0.0` and `::` even reach the local host on Linux. */
const NEVER = list([
  ['0.0.0.0', 8, 'ipv4'], // "this network"
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, incl. broadcast 255.255.255.255
  ['::', 128, 'ipv6'], // unspecified
  ['ff00::', 8, 'ipv6'], // multicast
]);

const PRIVATE = list([
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // CGNAT
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local, incl. metadata
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
  ['192.0.2.0', 24, 'ipv4'], // documentation
  ['192.88.99.0', 24, 'ipv4'], // 6to4 relay
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['::1', 128, 'ipv6'],
  ['::', 96, 'ipv6'], // IPv4-compatible (deprecated)
  ['::ffff:0:0:0', 96, 'ipv6'], // IPv4-translated (SIIT)
  ['64:ff9b::', 32, 'ipv6'], // NAT64: the well-known /96, the local-use 64:ff9b:1::/48 (RFC 8215), and the rest of the /32
  ['100::', 64, 'ipv6'], // discard-only
  ['2001::', 32, 'ipv6'], // Teredo
  ['2001:db8::', 32, 'ipv6'], // documentation
  ['3fff::', 20, 'ipv6'], // documentation (RFC 9637)
  ['2001:10::', 28, 'ipv6'], // ORCHID (deprecated)
  ['2001:20::', 28, 'ipv6'], // ORCHIDv2
  ['2002::', 16, 'ipv6'], // 6to4
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
  ['fec0::', 10, 'ipv6'], // site-local (deprecated)
]);

const METADATA = list([
  ['169.254.169.254', 32, 'ipv4'], // AWS, GCP, Azure, OpenStack
  ['169.254.170.2', 32, 'ipv4'], // ECS task metadata
  ['100.100.100.200', 32, 'ipv4'], // Alibaba Cloud
  ['fd00:ec2::254', 128, 'ipv6'], // AWS IPv6 metadata
]);

export type AddressVerdict = 'public' | 'private' | 'never' | 'metadata' | 'invalid';

/** The 16 bytes of an IPv6 literal (no brackets, no zone), or undefined. */
function ipv6Bytes(address: string): Uint8Array | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address.toLowerCase();
  const out = new Uint8Array(16);
  // A trailing dotted quad is the last 32 bits.
  const quad = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (quad) {
    const [, a, b, c, d] = quad.map(Number) as [number, number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const groups = (g: string) => (g === '' ? [] : g.split(':').map((x) => parseInt(x, 16)));
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? front : [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  if (all.length !== 8) return undefined;
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 255;
  });
  return out;
}

const v4 = (b: Uint8Array, at: number, xor = 0) => [0, 1, 2, 3].map((i) => b[at + i]! ^ xor).join('.');
const zero = (b: Uint8Array, from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
const startsWith = (b: Uint8Array, prefix: readonly number[]) => prefix.every((x, i) => b[i] === x);

/** The IPv4 address at bit `prefix` of a NAT64 address (RFC 6052 §2.2: bits 64-71 are skipped). */
function nat64(b: Uint8Array, prefix: 32 | 40 | 48 | 56 | 64 | 96): string {
  const at = prefix / 8;
  const bytes = prefix === 96 ? [12, 13, 14, 15] : [at, at + 1, at + 2, at + 3].map((i) => (i >= 8 ? i + 1 : i));
  return bytes.map((i) => b[i]!).join('.');
}

/**
 * The IPv4 addresses an IPv6 address carries: IPv4-mapped (::ffff:0:0/96), IPv4-translated
 * (::ffff:0:0:0/96), IPv4-compatible (::/96), NAT64 (anywhere in 64:ff9b::/32, in every
 * RFC 6052 layout, since an operator's prefix length decides where the IPv4 address sits),
 * 6to4 (2002::/16), Teredo (2001::/32: the server, and the client obfuscated) and ISATAP
 * interface identifiers (…:0:5efe:a.b.c.d, …:200:5efe:a.b.c.d). Any of them may reach that
 * IPv4 address on the right network.
 */
export function embeddedIPv4(address: string): string[] {
  const b = ipv6Bytes(address);
  if (!b) return [];
  if (zero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return [v4(b, 12)];
  if (zero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && zero(b, 10, 12)) return [v4(b, 12)]; // IPv4-translated (SIIT)
  if (zero(b, 0, 12) && !zero(b, 12, 16) && !(zero(b, 12, 15) && b[15] === 1)) return [v4(b, 12)];
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b])) {
    // The well-known prefix is a /96 (RFC 6052); the local-use /48 may be cut at /48-/96 by
    // its operator; the rest of the /32 is unassigned: every layout, strictest counts.
    const layouts = zero(b, 4, 12) ? ([96] as const) : b[4] === 0 && b[5] === 1 ? ([48, 56, 64, 96] as const) : ([32, 40, 48, 56, 64, 96] as const);
    return layouts.map((p) => nat64(b, p));
  }
  if (startsWith(b, [0x20, 0x02])) return [v4(b, 2)];
  if (startsWith(b, [0x20, 0x01, 0x00, 0x00])) return [v4(b, 4), v4(b, 12, 0xff)];
  if ((b[8] === 0 || b[8] === 2) && b[9] === 0 && b[10] === 0x5e && b[11] === 0xfe) return [v4(b, 12)]; // ISATAP
  return [];
}

function classifyPlain(address: string, type: 'ipv4' | 'ipv6'): AddressVerdict {
  if (METADATA.check(address, type)) return 'metadata';
  if (NEVER.check(address, type)) return 'never';
  if (PRIVATE.check(address, type)) return 'private';
  return 'public';
}

const RANK: Record<AddressVerdict, number> = { invalid: 4, metadata: 3, never: 2, private: 1, public: 0 };

/** Classifies one resolved address (a canonical IPv4 or IPv6 literal, without brackets). */
export function classifyAddress(address: string): AddressVerdict {
  const zoned = address.indexOf('%');
  // Zone-scoped: link-local by definition (but what it embeds still counts).
  const bare = zoned >= 0 ? address.slice(0, zoned) : address;
  const family = isIP(bare);
  if (family === 0) return 'invalid';
  let verdict = classifyPlain(bare, family === 4 ? 'ipv4' : 'ipv6');
  if (zoned >= 0 && verdict === 'public') verdict = 'private';
  if (family === 6) {
    const embedded = embeddedIPv4(bare);
    // An IPv4-mapped address is that IPv4 address; the other forms take the strictest of their
    // own verdict and that of every IPv4 address they may carry.
    const b = ipv6Bytes(bare)!;
    const mapped = zero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff;
    for (const e of embedded) {
      const inner = classifyPlain(e, 'ipv4');
      if (mapped) verdict = inner;
      else if (RANK[inner] > RANK[verdict]) verdict = inner;
    }
  }
  return verdict;
}
