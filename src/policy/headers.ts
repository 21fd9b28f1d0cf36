// Agent headers that may travel upstream. Anything that could carry or override a
// credential, steer a proxy, confuse message framing, or make the upstream's web stack act
// on another method, path, host or client than the one the allow-lists checked is dropped;
// malformed names or values are refused outright.

import { AivaultError } from '../errors.ts';
import { isSteeringHeader } from './overrides.ts';

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
// Field values are visible ASCII, space, tab and obs-text (RFC 9110 5.5); controls would
// split or confuse the message, and anything past Latin-1 cannot be sent at all.
const BAD_VALUE = /[\u0000-\u0008\u000a-\u001f\u007f\u0100-\uffff]/;

const ALWAYS_DROPPED = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'expect',
  'accept-encoding',
  'http2-settings',
  // httpoxy: CGI stacks turn it into HTTP_PROXY, which HTTP clients there take as their proxy.
  'proxy',
]);

/**
 * A header name as CGI-style stacks read it: case does not tell names apart there, nor does
 * any character but a letter or digit (lighttpd and Apache 2.2 turn each into `_`, so
 * `X.HTTP.Method.Override` is `HTTP_X_HTTP_METHOD_OVERRIDE`).
 */
export function cgiName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '-');
}

/**
 * The values of every header sent under a spelling of `name` (lower case): Puma and Unicorn
 * read `Content_Type` as `CONTENT_TYPE`, as CGI stacks read other names.
 */
export function valuesNamed(headers: ReadonlyMap<string, string>, name: string): string[] {
  return [...headers].filter(([n]) => cgiName(n) === name).map(([, v]) => v);
}

/** Whether a lower-case header name matches one of a capability's patterns (a trailing `*` for a prefix). */
export function headerAllowed(patterns: readonly string[], lower: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? lower.startsWith(p.slice(0, -1)) : lower === p));
}

export const MAX_AGENT_HEADERS = 64;

/** Returns lower-case name -> value for the headers allowed through. */
export function sanitizeAgentHeaders(headers: ReadonlyArray<readonly [string, string]>, ownedByStrategy: readonly string[], overridesAllowed: readonly string[] = []): Map<string, string> {
  if (headers.length > MAX_AGENT_HEADERS) throw new AivaultError('MALFORMED_HEADER', `at most ${MAX_AGENT_HEADERS} headers may be sent`);
  const named = new Set<string>();
  for (const [name, value] of headers) {
    if (!TOKEN.test(name)) throw new AivaultError('MALFORMED_HEADER', 'a header name contains characters a header name cannot have');
    if (BAD_VALUE.test(value)) throw new AivaultError('MALFORMED_HEADER', `header ${name.toLowerCase()} contains a control character or a character past Latin-1`);
    if (name.toLowerCase() === 'connection') for (const n of value.split(',')) named.add(cgiName(n.trim()));
  }
  const owned = new Set(ownedByStrategy.map(cgiName));
  const out = new Map<string, string>();
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    // Decided by the name a CGI, PHP, WSGI or Rack stack reads (`X_Forwarded_For` is
    // `X-Forwarded-For` there), so no spelling passes what its twin would not.
    const as = cgiName(lower);
    if (ALWAYS_DROPPED.has(as) || as.startsWith('proxy-') || owned.has(as) || named.has(as)) continue;
    if (isSteeringHeader(as) && !headerAllowed(overridesAllowed, as)) continue;
    const prev = out.get(lower);
    out.set(lower, prev === undefined ? value.trim() : `${prev}, ${value.trim()}`);
  }
  return out;
}

const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'content-length', 'content-encoding']);

/**
 * Whether an upstream response header is passed on to the agent (after scrubbing). Our own
 * namespace is ours alone: an upstream's `x-aivault-error` would pass its answer off as a
 * refusal by aivault ("nothing was sent").
 */
export function keepResponseHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return !HOP_BY_HOP_RESPONSE.has(lower) && !lower.startsWith('x-aivault-');
}
