// What an approval shows the owner of the request it would let go, and the digest that binds
// the decision to exactly that request. Shown minus aivault's own credential (not applied
// yet), with anything that could echo a secret scrubbed; the digest covers what is sent.

import { createHash } from 'node:crypto';
import { TextDecoder } from 'node:util';
import type { ApprovalDetails } from '../storage/types.ts';

/** Enough of a body to decide on; its length and SHA-256 stand for the rest. */
const PREVIEW_BYTES = 4096;

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

/** The digest of a request as it will be sent (before the credential is applied). */
export function requestDigest(method: string, url: string, headers: ReadonlyArray<readonly [string, string]>, body: Uint8Array | undefined): string {
  return sha256(JSON.stringify([method, url, headers, body ? sha256(body) : null]));
}

export function approvalDetails(
  request: { agentName: string; method: string; url: string; headers: ReadonlyArray<readonly [string, string]>; body: Uint8Array | undefined },
  scrub: (text: string) => string,
): ApprovalDetails {
  const { body } = request;
  let preview: { preview: string; encoding: 'utf8' | 'base64' } | undefined;
  if (body) {
    const head = body.subarray(0, PREVIEW_BYTES);
    try {
      // A cut multi-byte character at the end is dropped rather than shown as an error.
      preview = { preview: scrub(new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true })), encoding: 'utf8' };
    } catch {
      preview = { preview: Buffer.from(head).toString('base64'), encoding: 'base64' };
    }
  }
  return {
    agentName: request.agentName,
    url: scrub(request.url),
    headers: request.headers.map(([k, v]) => [k, scrub(v)]),
    body: body && preview ? { length: body.byteLength, sha256: sha256(body), ...preview, truncated: body.byteLength > PREVIEW_BYTES } : null,
    digest: requestDigest(request.method, request.url, request.headers, body),
  };
}
