// Host patterns: an exact lower-case name, or `*.example.com` matching exactly one
// extra label; either may carry `:port`. Without a port, only the scheme's default port
// is allowed.

export interface HostPattern {
  wildcard: boolean;
  /** The name without `*.` and without port. */
  name: string;
  port: number | undefined;
}

export function parseHostPattern(pattern: string): HostPattern {
  const wildcard = pattern.startsWith('*.');
  const body = wildcard ? pattern.slice(2) : pattern;
  // IPv6 literals are written in brackets, so a final `:digits` is always the port; the
  // name is kept without them, as a request's hostname is.
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(body)!;
  return { wildcard, name: canonicalHostname(m[1]!.replace(/^\[(.*)\]$/, '$1')), port: m[2] !== undefined ? Number(m[2]) : undefined };
}

/** Canonical form of a host name as it arrives: lower case, no trailing dot. */
export function canonicalHostname(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

export function hostnameMatches(pattern: HostPattern, hostname: string): boolean {
  const host = canonicalHostname(hostname);
  if (!pattern.wildcard) return host === pattern.name;
  if (!host.endsWith(`.${pattern.name}`)) return false;
  const label = host.slice(0, -(pattern.name.length + 1));
  return label.length > 0 && !label.includes('.');
}

/** Whether `pattern` admits host `hostname` on `port` (`defaultPort` when the pattern names none). */
export function hostMatches(pattern: string | HostPattern, hostname: string, port: number, defaultPort: number): boolean {
  const p = typeof pattern === 'string' ? parseHostPattern(pattern) : pattern;
  return hostnameMatches(p, hostname) && port === (p.port ?? defaultPort);
}

/** Whether every host `inner` admits is admitted by `outer` (used to check allow.hosts ⊆ hosts). */
export function patternCovers(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  const o = parseHostPattern(outer);
  const i = parseHostPattern(inner);
  if (i.wildcard || o.port !== i.port) return false;
  return hostnameMatches(o, i.name);
}

/** The port a URL's scheme connects to by default: 443 for https and wss, 80 otherwise. */
export function defaultPort(protocol: string): number {
  return protocol === 'https:' || protocol === 'wss:' ? 443 : 80;
}

/** The port a connection goes to: the one given, else the scheme's default. */
export function portOf(port: string | number | undefined, protocol: string): number {
  return Number(port) || defaultPort(protocol);
}
