// `aws_sig_v4`: signs the request with the AWS SDK's own signer (@smithy/signature-v4,
// SHA-256 from @aws-crypto/sha256-js), payload hash included. What is signed is exactly
// what is sent: the query string is re-serialised with RFC 3986 encoding first.

import { lazy } from '../lazy.ts';
import { AivaultError } from '../errors.ts';
import type { AuthStrategy, OutboundRequest } from './types.ts';

const signerLib = lazy<typeof import('@smithy/signature-v4')>('@smithy/signature-v4');
const sha256Lib = lazy<typeof import('@aws-crypto/sha256-js')>('@aws-crypto/sha256-js');

const OWNED = ['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256'];

/** RFC 3986 encoding, as SigV4 canonicalises query strings. */
function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A region named in the host (`bedrock-runtime.eu-west-1.amazonaws.com`) wins over the configured one. */
export function regionFor(hostname: string, configured: string): string {
  const m = /\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d)\.amazonaws\.com\.?$/.exec(hostname);
  return m?.[1] ?? configured;
}

export interface SigV4Options {
  service: string;
  region: string;
  /** For tests against AWS's published vectors. */
  signingDate?: () => Date;
}

export async function signRequest(request: OutboundRequest, secrets: ReadonlyMap<string, string>, options: SigV4Options): Promise<void> {
  const accessKeyId = secrets.get('access_key_id');
  const secretAccessKey = secrets.get('secret_access_key');
  if (!accessKeyId || !secretAccessKey) throw new AivaultError('CREDENTIAL_NOT_READY', 'AWS SigV4 needs access_key_id and secret_access_key');
  const sessionToken = secrets.get('session_token');
  const s3 = options.service === 's3';
  const signer = new (signerLib().SignatureV4)({
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
    region: regionFor(request.url.hostname, options.region),
    service: options.service,
    sha256: sha256Lib().Sha256,
    // S3 signs the path as sent and wants the payload hash header; other services double-encode.
    uriEscapePath: !s3,
    applyChecksum: s3,
  });
  const pairs = [...request.url.searchParams];
  request.url.search = pairs.map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).join('&');
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of pairs) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const headers: Record<string, string> = Object.fromEntries(request.headers);
  headers.host = request.url.host;
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: request.url.protocol,
      hostname: request.url.hostname,
      ...(request.url.port ? { port: Number(request.url.port) } : {}),
      path: request.url.pathname,
      query,
      headers,
      body: request.body ?? '',
    },
    options.signingDate ? { signingDate: options.signingDate() } : {},
  );
  for (const [name, value] of Object.entries(signed.headers)) {
    const lower = name.toLowerCase();
    if (lower !== 'host') request.headers.set(lower, String(value));
  }
}

export function awsSigV4Strategy(options: SigV4Options): AuthStrategy {
  return {
    kind: 'aws_sig_v4',
    ownedHeaders: OWNED,
    ownedQueryParams: ['X-Amz-Signature', 'X-Amz-Credential', 'X-Amz-Security-Token'],
    // X-Amz-Target picks the operation of JSON-protocol services; x-amz-copy-source, -acl,
    // -grant-* change what an S3 write does. Signed, they carry the owner's authority.
    signs: {
      header: (name) => name.toLowerCase().startsWith('x-amz-'),
      queryParam: (name) => name.toLowerCase().startsWith('x-amz-'),
    },
    async apply(request, secrets) {
      await signRequest(request, secrets, options);
      // The access key id travels in the clear in every signed request; the session token too.
      return [secrets.get('access_key_id') ?? '', secrets.get('session_token') ?? ''].filter((v) => v.length > 0);
    },
  };
}
