import { createHash, createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** An independent SigV4 verifier (node:crypto only), standing in for AWS. */
export function verifySigV4(req: IncomingMessage, body: Buffer, secretKey: string, service: string): { ok: boolean; accessKeyId?: string } {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false };
  const [, accessKeyId, date, region, svc, signedHeaders, signature] = m as unknown as string[];
  if (svc !== service) return { ok: false };
  const url = new URL(req.url!, 'http://x');
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  const canonicalUri = url.pathname.split('/').map((seg) => enc(seg)).join('/');
  const canonicalQuery = [...url.searchParams].map(([k, v]) => [enc(k), enc(v)]).sort((a, b) => (a[0] === b[0] ? (a[1]! < b[1]! ? -1 : 1) : a[0]! < b[0]! ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
  const names = signedHeaders!.split(';');
  const canonicalHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const payloadHash = createHash('sha256').update(body).digest('hex');
  const creq = [req.method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const amzDate = String(req.headers['x-amz-date']);
  const sts = ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/${service}/aws4_request`, createHash('sha256').update(creq).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${secretKey}`).update(date!).digest();
  for (const part of [region!, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const expected = createHmac('sha256', key).update(sts).digest('hex');
  return { ok: expected === signature && names.includes('host') && names.includes('x-amz-date'), accessKeyId };
}

