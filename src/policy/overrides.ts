// What asks an upstream's web stack to act on another method, path, host or client than the
// request the allow-lists checked. Rails, Laravel, Symfony, ASP.NET, Express's
// method-override, IIS URL Rewrite, Spring, Envoy, Next.js middleware and load balancers each
// read some of these as the request's real method, path or origin: let through, a GET
// capability could delete, `/v1/public` serve `/admin`, an IP allow-list be passed.

import { AivaultError } from '../errors.ts';

const STEERING = new Set([
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-rewrite-url',
  'x-override-url',
  'x-middleware-subrequest',
  'forwarded',
  'via',
  'max-forwards',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-proxyuser-ip',
  'x-host',
  'x-http-host-override',
]);
const STEERING_PREFIXES = ['x-forwarded-', 'x-original-', 'x-envoy-'];

/** Whether an agent header (lower case) is one of them; a capability names any it needs (registry `allow.overrideHeaders`). */
export function isSteeringHeader(lower: string): boolean {
  return STEERING.has(lower) || STEERING_PREFIXES.some((p) => lower.startsWith(p));
}

/** Query or form parameters frameworks read as the method (Rails/Rack, Laravel, Symfony, Express): `_method=DELETE`. */
const METHOD_PARAMS = new Set(['_method', 'x_http_method_override', 'x_http_method', 'x_method_override']);

/** A parameter name as PHP reads it (`.`, space and `[` become `_`), case and `-` ignored. */
const paramName = (name: string) => name.toLowerCase().replace(/[-. []/g, '_');

/**
 * Refuses a method override carried as a query parameter, or as a field of a form-encoded
 * body (which Rack reads on POST). Multipart bodies are not parsed: see the threat model.
 */
export function assertNoMethodOverride(query: Iterable<string>, contentType: string | undefined, body: Uint8Array | undefined): void {
  for (const name of query) {
    if (METHOD_PARAMS.has(paramName(name))) throw new AivaultError('MALFORMED_URL', `query parameter ${name.slice(0, 64)} asks the upstream for another method; aivault refuses it`);
  }
  if (!body || !contentType || !/^\s*application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType)) return;
  for (const name of new URLSearchParams(Buffer.from(body).toString('latin1')).keys()) {
    if (METHOD_PARAMS.has(paramName(name))) throw new AivaultError('METHOD_NOT_ALLOWED', `the form field ${name.slice(0, 64)} asks the upstream for another method; aivault refuses it`);
  }
}
