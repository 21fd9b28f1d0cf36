// Turns an agent's request into the one URL it may reach, or a denial. The path is
// checked as written and the built URL must carry exactly that path: if the WHATWG
// parser would change it, the request is refused rather than silently rewritten.

import { AivaultError } from '../errors.ts';
import { defaultPort, hostMatches, parseHostPattern, portOf } from './hosts.ts';
import { assertCleanPath, pathMatchesPrefix } from './paths.ts';

export interface TargetPolicy {
  hosts: readonly string[];
  pathPrefixes: readonly string[];
  allowHttp: boolean;
}

export interface TargetRequest {
  url?: string;
  host?: string;
  path?: string;
  query?: ReadonlyArray<readonly [string, string]>;
}

export interface Target {
  url: URL;
  scheme: 'http' | 'https';
  hostname: string;
  port: number;
  /** The path as the agent wrote it (what audit records and prefixes match). */
  path: string;
}

const RAW_URL = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/;
const HOST_CHARS = /^[A-Za-z0-9.\-:[\]]+$/;

function deny(code: 'MALFORMED_URL' | 'INSECURE_SCHEME' | 'HOST_NOT_ALLOWED' | 'HOST_REQUIRED' | 'PATH_NOT_ALLOWED' | 'MALFORMED_PATH', message: string, field?: string): AivaultError {
  return new AivaultError(code, message, field !== undefined ? { field } : undefined);
}

function defaultHost(policy: TargetPolicy): string {
  const concrete = policy.hosts.filter((h) => !h.startsWith('*.'));
  if (concrete.length === 1 && policy.hosts.length === 1) return concrete[0]!;
  throw deny('HOST_REQUIRED', `this capability allows several hosts (${policy.hosts.join(', ')}); name one with host`, 'host');
}

function defaultPath(policy: TargetPolicy): string {
  const concrete = policy.pathPrefixes.filter((p) => !p.split('/').includes('*'));
  if (concrete.length === 1 && policy.pathPrefixes.length === 1) return concrete[0]!;
  throw deny('MALFORMED_PATH', 'this capability allows several paths; give one with path', 'path');
}

export function resolveTarget(policy: TargetPolicy, request: TargetRequest): Target {
  let scheme: string = policy.allowHttp ? 'http' : 'https';
  let authority: string;
  let path: string;
  let query: Array<[string, string]> = (request.query ?? []).map(([k, v]) => [k, v]);

  if (request.url !== undefined) {
    if (request.host !== undefined || request.path !== undefined) throw new AivaultError('INVALID_ARGUMENT', 'give either a URL or a host and path, not both');
    const m = RAW_URL.exec(request.url);
    if (!m) throw deny('MALFORMED_URL', 'the URL is not an absolute http(s) URL');
    if (m[5] !== undefined) throw deny('MALFORMED_URL', 'the URL has a fragment');
    scheme = m[1]!.toLowerCase();
    authority = m[2]!;
    path = m[3] || '/';
    if (m[4] !== undefined) {
      if (/[\u0000-\u001f\u007f ]/.test(m[4])) throw deny('MALFORMED_URL', 'the query string contains spaces or control characters');
      query = [...new URLSearchParams(m[4]), ...query];
    }
  } else {
    authority = request.host ?? defaultHost(policy);
    path = request.path ?? defaultPath(policy);
  }

  if (scheme !== 'https' && scheme !== 'http') throw deny('MALFORMED_URL', 'only http and https URLs are supported');
  if (scheme === 'http' && !policy.allowHttp) throw deny('INSECURE_SCHEME', 'plain http is refused: the owner did not allow it for this credential (allowHttp)');
  if (authority.includes('@')) throw deny('MALFORMED_URL', 'userinfo (user:password@) is not allowed in the host');
  if (!HOST_CHARS.test(authority)) throw deny('MALFORMED_URL', 'the host contains characters a host name cannot have');

  let parsedHost: URL;
  try {
    parsedHost = new URL(`${scheme}://${authority}/`);
  } catch {
    throw deny('MALFORMED_URL', 'the host is not a valid host name');
  }
  const port = portOf(parsedHost.port, parsedHost.protocol);
  const hostname = parsedHost.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!policy.hosts.some((h) => hostMatches(parseHostPattern(h), hostname, port, defaultPort(parsedHost.protocol)))) {
    throw deny('HOST_NOT_ALLOWED', `host ${hostname}${parsedHost.port ? `:${parsedHost.port}` : ''} is not allowed for this capability`);
  }

  assertCleanPath(path);
  if (!policy.pathPrefixes.some((p) => pathMatchesPrefix(p, path))) {
    throw deny('PATH_NOT_ALLOWED', `path is outside the capability's prefixes (${policy.pathPrefixes.join(', ')})`);
  }

  const url = new URL(`${scheme}://${parsedHost.host}${path}`);
  if (url.pathname !== path) throw deny('MALFORMED_PATH', 'the path would be rewritten by URL parsing');
  for (const [k, v] of query) {
    if (k.length === 0) throw deny('MALFORMED_URL', 'a query parameter has no name');
    url.searchParams.append(k, v);
  }
  return { url, scheme, hostname, port, path };
}

/**
 * The request as a registry alternative credential sends it: to the addressed host when the
 * alternative lists it, else to its first host; its path prefix in front of the path.
 * Checks ran on the addressed request; this only moves it.
 */
export function routeTarget(target: Target, route: { hosts: readonly string[]; pathPrefix: string }): Target {
  const moved = route.hosts.length === 0 || route.hosts.includes(target.url.host) ? { ...target, url: new URL(target.url) } : redirectTarget(target, route.hosts[0]!, false);
  if (route.pathPrefix) moved.url.pathname = route.pathPrefix + moved.url.pathname;
  return moved;
}

/**
 * The same request sent to another endpoint the owner chose for this host (see
 * `aivault endpoint set`): only the scheme, host and port change.
 */
export function redirectTarget(target: Target, replacement: string, allowHttp: boolean): Target {
  const scheme = allowHttp ? 'http' : 'https';
  const url = new URL(target.url);
  const parsed = new URL(`${scheme}://${replacement}/`);
  url.protocol = `${scheme}:`;
  url.host = parsed.host;
  const port = portOf(parsed.port, parsed.protocol);
  return { url, scheme, hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port, path: target.path };
}
