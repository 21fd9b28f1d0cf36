// `hmac`: an HMAC over the parts of the request the provider declares (body only by
// default; optionally timestamp, method, path, path and query), rendered into a header,
// with the timestamp and any key-id headers the scheme needs (BitMEX, OKX…).

import { createHmac } from 'node:crypto';
import type { HmacConfig } from '../registry/types.ts';
import { renderHeaderValue } from './render.ts';
import type { AuthStrategy, OutboundRequest } from './types.ts';

export function formatTimestamp(format: HmacConfig['timestamp_format'], now: number, offsetSeconds = 0): string {
  const at = now + offsetSeconds * 1000;
  if (format === 'unix_ms') return String(at);
  if (format === 'iso8601') return new Date(at).toISOString();
  return String(Math.floor(at / 1000));
}

/** The signed message: the declared components, in order, joined by the separator. */
export function signedMessage(config: HmacConfig, request: OutboundRequest, timestamp: string): Buffer {
  const parts = (config.signed ?? ['body']).map((c): Buffer => {
    switch (c) {
      case 'timestamp':
        return Buffer.from(timestamp);
      case 'method':
        return Buffer.from(request.method.toUpperCase());
      case 'path':
        return Buffer.from(request.url.pathname);
      case 'path_and_query':
        return Buffer.from(request.url.pathname + request.url.search);
      case 'body':
        return request.body ?? Buffer.alloc(0);
    }
  });
  const separator = Buffer.from(config.separator ?? '');
  return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [separator, p])));
}

export function hmacStrategy(config: HmacConfig, now: () => number = Date.now): AuthStrategy {
  const extra = config.extra_headers ?? [];
  return {
    kind: 'hmac',
    ownedHeaders: [config.header_name, ...(config.timestamp_header ? [config.timestamp_header] : []), ...extra.map((e) => e.header_name)].map((h) => h.toLowerCase()),
    ownedQueryParams: [],
    apply(request, secrets) {
      const timestamp = formatTimestamp(config.timestamp_format, now(), config.timestamp_offset_seconds);
      const signature = createHmac(config.algorithm, secrets.get('secret') ?? '')
        .update(signedMessage(config, request, timestamp))
        .digest(config.encoding ?? 'hex');
      const values = new Map([...secrets, ['signature', signature], ['timestamp', timestamp]]);
      request.headers.set(config.header_name.toLowerCase(), renderHeaderValue(config.value_template, values));
      if (config.timestamp_header) request.headers.set(config.timestamp_header.toLowerCase(), timestamp);
      const injected: string[] = [];
      for (const e of extra) {
        const value = renderHeaderValue(e.value_template, values);
        request.headers.set(e.header_name.toLowerCase(), value);
        injected.push(value);
      }
      // The signature changes every time and does not reveal the key: it is not scrubbed.
      return injected;
    },
  };
}
