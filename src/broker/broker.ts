// The invoke pipeline (DESIGN.md "One invoke, step by step"). Every way in (CLI, daemon,
// gateway, MCP) calls `invoke`, so no path is weaker than another:
//   capability -> method -> target URL (host, path) -> credential ready -> headers ->
//   body size -> [audit record, fail closed] -> secrets -> strategy -> upstream ->
//   streamed, decoded, size-capped, scrubbed response -> audit outcome.

import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { createStrategy, type OutboundRequest } from '../auth/index.ts';
import { AivaultError } from '../errors.ts';
import type { Registry } from '../registry/registry.ts';
import { assertAddressAllowed, isIpLiteral } from '../policy/dns.ts';
import { keepResponseHeader, sanitizeAgentHeaders } from '../policy/headers.ts';
import { resolveTarget, type Target } from '../policy/target.ts';
import { OWNER_LOCAL, type Vault } from '../vault/vault.ts';
import { Catalog, type ResolvedCapability } from './catalog.ts';
import { Scrubber } from './scrub.ts';
import { UpstreamClient, upstreamError } from './upstream.ts';

export interface InvokeRequest {
  capability: string;
  method: string;
  /** Absolute URL, instead of host + path. */
  url?: string;
  host?: string;
  path?: string;
  query?: ReadonlyArray<readonly [string, string]>;
  headers?: ReadonlyArray<readonly [string, string]>;
  body?: Uint8Array;
}

export interface InvokeResponse {
  status: number;
  headers: Array<[string, string]>;
  /** The response body: decoded, size-capped, scrubbed. */
  body: Readable;
  auditSeq: number;
  /** Settles when the body has been consumed (or failed) and its outcome queued for audit. */
  done: Promise<void>;
}

export interface InvokeContext {
  /** Who is asking: `owner:local`, `agent:<id>`… recorded in the audit log. */
  actor?: string;
}

const METHOD_TOKEN = /^[A-Z]+$/;

/** The path as recorded: query parameter names kept, values dropped. */
function auditPath(target: Target, agentQuery: ReadonlyArray<readonly [string, string]>): string {
  const names = [...new Set(agentQuery.map(([k]) => k))];
  return names.length > 0 ? `${target.path}?${names.map((n) => encodeURIComponent(n)).join('&')}` : target.path;
}

/** What a denial records of where the agent tried to go: printable, bounded, no query. */
function attempted(request: InvokeRequest): { host: string | null; path: string | null } {
  const printable = (v: string | undefined) => (v !== undefined && /^[\x21-\x7e]{1,512}$/.test(v) ? v : null);
  if (request.url !== undefined) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)([^?#]*)/.exec(request.url);
    return { host: printable(m?.[1]), path: printable(m?.[2] || undefined) };
  }
  return { host: printable(request.host), path: printable(request.path) };
}

/** Counts bytes and fails the stream once `limit` is passed. */
function sizeLimit(limit: number, count: (n: number) => void): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      total += chunk.length;
      count(total);
      if (total > limit) return cb(new AivaultError('RESPONSE_TOO_LARGE', `the response is larger than the capability's limit of ${limit} bytes`));
      cb(null, chunk);
    },
  });
}

function decoder(encoding: string | undefined): Transform | undefined {
  const e = (encoding ?? 'identity').trim().toLowerCase();
  if (e === '' || e === 'identity') return undefined;
  if (e === 'gzip' || e === 'x-gzip') return createGunzip();
  if (e === 'deflate') return createInflate();
  if (e === 'br') return createBrotliDecompress();
  // An encoding we cannot decode is one we cannot scrub.
  throw new AivaultError('UPSTREAM_ERROR', `the upstream used content-encoding "${e}", which aivault cannot scrub`);
}

export class Broker {
  readonly vault: Vault;
  readonly catalog: Catalog;
  readonly #upstream = new UpstreamClient();

  constructor(vault: Vault, registry: Registry) {
    this.vault = vault;
    this.catalog = new Catalog(vault, registry);
  }

  async close(): Promise<void> {
    await this.#upstream.close();
  }

  async invoke(request: InvokeRequest, context: InvokeContext = {}): Promise<InvokeResponse> {
    const started = performance.now();
    const actor = context.actor ?? OWNER_LOCAL;
    const method = request.method.toUpperCase();
    const audit = this.vault.audit;
    let capability: ResolvedCapability | undefined;
    let target: Target | undefined;
    let headers: Map<string, string>;

    // Steps 1-6: every check that can refuse, before anything is unsealed or sent.
    try {
      if (!METHOD_TOKEN.test(method)) throw new AivaultError('METHOD_NOT_ALLOWED', 'the method is not an HTTP method name');
      capability = await this.catalog.resolveCapability(request.capability);
      if (!capability.methods.includes(method)) {
        throw new AivaultError('METHOD_NOT_ALLOWED', `${method} is not allowed for ${capability.id} (allowed: ${capability.methods.join(', ')})`);
      }
      const credential = capability.credential;
      target = resolveTarget({ hosts: capability.hosts, pathPrefixes: capability.pathPrefixes, allowHttp: credential.allowHttp }, request);
      if (credential.missing.length > 0) {
        throw new AivaultError('CREDENTIAL_NOT_READY', `${capability.id} is not ready: missing ${credential.missing.join(', ')}`);
      }
      if (isIpLiteral(target.hostname)) assertAddressAllowed(target.hostname, credential);
      const strategy = createStrategy(credential.auth);
      for (const name of strategy.ownedQueryParams) target.url.searchParams.delete(name);
      headers = sanitizeAgentHeaders(request.headers ?? [], strategy.ownedHeaders);
      if (request.body && request.body.byteLength > capability.limits.maxRequestBytes) {
        throw new AivaultError('REQUEST_TOO_LARGE', `the request body is larger than the capability's limit of ${capability.limits.maxRequestBytes} bytes`);
      }
    } catch (err) {
      if (!(err instanceof AivaultError)) throw err;
      await audit.append({
        actor,
        action: 'invoke',
        capability: request.capability.slice(0, 200),
        method: method.slice(0, 16),
        ...(target ? { host: target.hostname, path: auditPath(target, request.query ?? []) } : attempted(request)),
        decision: 'deny',
        reason: err.code,
      }, { durationMs: Math.round(performance.now() - started) });
      throw err;
    }

    // Step 9 first: the allow is on record before any byte goes upstream (fail closed).
    const seq = await audit.append({
      actor,
      action: 'invoke',
      capability: capability.id,
      method,
      host: target.hostname,
      path: auditPath(target, request.query ?? []),
      decision: 'allow',
    });
    const bytesIn = request.body?.byteLength ?? 0;
    const fail = (err: unknown): never => {
      const e = err instanceof AivaultError ? err : upstreamError(err);
      audit.complete(seq, { bytesIn, durationMs: Math.round(performance.now() - started), error: e.code });
      throw e;
    };

    let scrubber: Scrubber;
    let outbound: OutboundRequest;
    try {
      const secrets = new Map<string, string>();
      for (const [placeholder, id] of capability.credential.bindings) {
        const value = await this.vault.revealSecret(id);
        secrets.set(placeholder, value.toString('utf8'));
        value.fill(0);
      }
      outbound = { method, url: target.url, headers, body: request.body ? Buffer.from(request.body) : undefined };
      const injected = await createStrategy(capability.credential.auth).apply(outbound, secrets);
      scrubber = new Scrubber([...secrets.values(), ...injected]);
    } catch (err) {
      return fail(err);
    }
    outbound.headers.set('accept-encoding', 'gzip, deflate, br');

    // Steps 7-8: send, never follow redirects, stream the answer back scrubbed.
    const signal = AbortSignal.timeout(capability.limits.timeoutMs);
    let response;
    try {
      response = await this.#upstream.send(
        {
          url: outbound.url,
          method,
          headers: Object.fromEntries(outbound.headers),
          body: outbound.body,
          allowPrivateNetwork: capability.credential.allowPrivateNetwork,
          connectTimeoutMs: capability.limits.connectTimeoutMs,
          timeoutMs: capability.limits.timeoutMs,
        },
        signal,
      );
    } catch (err) {
      return fail(err);
    }

    const declared = Number(response.headers['content-length']);
    let decode: Transform | undefined;
    try {
      if (Number.isFinite(declared) && declared > capability.limits.maxResponseBytes) {
        throw new AivaultError('RESPONSE_TOO_LARGE', `the response is larger than the capability's limit of ${capability.limits.maxResponseBytes} bytes`);
      }
      decode = decoder(response.headers['content-encoding'] as string | undefined);
    } catch (err) {
      // Discard the unread body; undici reports that as an abort, which is expected here.
      response.body.on('error', () => {}).destroy();
      return fail(err);
    }

    const outHeaders: Array<[string, string]> = [];
    for (const [name, value] of Object.entries(response.headers)) {
      if (value === undefined || !keepResponseHeader(name)) continue;
      for (const v of Array.isArray(value) ? value : [value]) outHeaders.push([name, scrubber.scrubText(v)]);
    }

    let bytesOut = 0;
    const scrubbed = scrubber.stream();
    const stages = [response.body as Readable, ...(decode ? [decode] : []), sizeLimit(capability.limits.maxResponseBytes, (n) => (bytesOut = n)), scrubbed];
    const done = pipeline(stages[0]!, ...(stages.slice(1) as [Transform])).then(
      () => audit.complete(seq, { status: response.statusCode, bytesIn, bytesOut, durationMs: Math.round(performance.now() - started) }),
      (err: unknown) => {
        const e = err instanceof AivaultError ? err : upstreamError(err, signal);
        audit.complete(seq, { status: response.statusCode, bytesIn, bytesOut, durationMs: Math.round(performance.now() - started), error: e.code });
        scrubbed.destroy(e);
        throw e;
      },
    );
    done.catch(() => {}); // observed through `body` errors; avoid an unhandled rejection
    return { status: response.statusCode, headers: outHeaders, body: scrubbed, auditSeq: seq, done };
  }
}
