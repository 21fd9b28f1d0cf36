// Ed25519-signed requests, for agents (and owners) that hold a key pair instead of a
// token. The signature covers the method, the raw path and query, a timestamp, a nonce,
// the signer's id, the SHA-256 of the body, and every header that travels on: so nothing
// can be replayed, re-aimed or re-bodied. Nonces are remembered for the skew window, and
// recorded only once a signature verifies (nobody can burn another signer's nonces).

import type { KeyObject } from 'node:crypto';

import { AivaultError } from '../errors.ts';
import type { SharedStateStorage } from '../storage/types.ts';

// node:crypto when a signature is made or checked (an agent with a token never loads it: a
// one-shot `invoke` would pay 5-10 ms for its ESM facade or its loading).
const nodeCrypto = () => process.getBuiltinModule('node:crypto');

export const SIGNATURE_HEADERS = {
  signer: 'x-aivault-signer',
  timestamp: 'x-aivault-timestamp',
  nonce: 'x-aivault-nonce',
  signature: 'x-aivault-signature',
} as const;

/** Largest accepted difference between the signer's clock and ours. */
export const MAX_SKEW_MS = 5 * 60_000;

/** Headers that are about this hop and never signed. */
const UNSIGNED = new Set(['host', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', SIGNATURE_HEADERS.signature]);

/** A signed request's body, read only once its head checks out. */
export type BodyReader = () => Promise<Buffer | undefined>;

export interface SignableRequest {
  method: string;
  /** The raw request target: path and query, exactly as sent. */
  target: string;
  headers: ReadonlyArray<readonly [string, string]>;
  body: Uint8Array | undefined;
}

/** The exact bytes signed. */
export function stringToSign(req: SignableRequest): string {
  const get = (name: string) => req.headers.find(([k]) => k.toLowerCase() === name)?.[1] ?? '';
  const signed = req.headers
    .map(([k, v]): [string, string] => [k.toLowerCase(), v.trim()])
    .filter(([k]) => !UNSIGNED.has(k))
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : av > bv ? 1 : 0) : a < b ? -1 : 1));
  return [
    'AIVAULT-ED25519-V1',
    req.method.toUpperCase(),
    req.target,
    get(SIGNATURE_HEADERS.timestamp),
    get(SIGNATURE_HEADERS.nonce),
    get(SIGNATURE_HEADERS.signer),
    nodeCrypto().createHash('sha256').update(req.body ?? new Uint8Array()).digest('hex'),
    ...signed.map(([k, v]) => `${k}:${v}`),
  ].join('\n');
}

/** Adds the signature headers to `headers` (which must already hold every other header). */
export function signRequest(req: SignableRequest, signer: string, privateKey: KeyObject | string, now = Date.now(), nonce = randomNonce()): Array<[string, string]> {
  const key = typeof privateKey === 'string' ? nodeCrypto().createPrivateKey(privateKey) : privateKey;
  const headers: Array<[string, string]> = [
    ...req.headers.map(([k, v]): [string, string] => [k, v]),
    [SIGNATURE_HEADERS.signer, signer],
    [SIGNATURE_HEADERS.timestamp, String(now)],
    [SIGNATURE_HEADERS.nonce, nonce],
  ];
  const signature = nodeCrypto().sign(null, Buffer.from(stringToSign({ ...req, headers }), 'utf8'), key).toString('base64');
  headers.push([SIGNATURE_HEADERS.signature, signature]);
  return headers;
}

function randomNonce(): string {
  return nodeCrypto().createHash('sha256').update(crypto.getRandomValues(new Uint8Array(32))).digest('base64url').slice(0, 32);
}

/** Used nonces, kept in storage: a nonce spent on one daemon replica is spent on all. */
export class ReplayGuard {
  readonly #storage: Pick<SharedStateStorage, 'rememberNonce'>;

  constructor(storage: Pick<SharedStateStorage, 'rememberNonce'>) {
    this.#storage = storage;
  }

  /** Records `signer`'s nonce; false when it was already used within the window. */
  remember(signer: string, nonce: string, now = Date.now()): Promise<boolean> {
    // Kept for twice the skew window: a timestamp accepted now stays acceptable that long.
    return this.#storage.rememberNonce(`${signer} ${nonce}`, now + 2 * MAX_SKEW_MS, now);
  }
}

/** The signer id a signed request names (an agent's or owner's id), or '' when it names none. */
export function signerOf(req: Pick<SignableRequest, 'headers'>): string {
  const signer = req.headers.find(([k]) => k.toLowerCase() === SIGNATURE_HEADERS.signer)?.[1] ?? '';
  return /^[0-9a-f-]{36}$/.test(signer) ? signer : '';
}

/**
 * What can be checked before the body is read (the signature covers it): a timestamp within
 * the skew window and a well-formed nonce. A daemon reads no body of a request failing these.
 */
export function assertSignedHead(headers: SignableRequest['headers'], now = Date.now()): void {
  const get = (name: string) => headers.find(([k]) => k.toLowerCase() === name)?.[1];
  const ts = Number(get(SIGNATURE_HEADERS.timestamp));
  if (!Number.isFinite(ts)) throw new AivaultError('SIGNATURE_INVALID', 'the signed request has no valid timestamp');
  if (Math.abs(now - ts) > MAX_SKEW_MS) throw new AivaultError('CLOCK_SKEW', `the request's timestamp is more than ${MAX_SKEW_MS / 1000} s away from the daemon's clock`);
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(get(SIGNATURE_HEADERS.nonce) ?? '')) throw new AivaultError('SIGNATURE_INVALID', 'the nonce must be 16-128 base64url characters');
}

/** Verifies a signed request against `publicKeyPem`: clock skew, signature, then (only then) the nonce. */
export async function verifySignedRequest(req: SignableRequest, publicKeyPem: string, guard: ReplayGuard, now = Date.now()): Promise<void> {
  assertSignedHead(req.headers, now);
  const get = (name: string) => req.headers.find(([k]) => k.toLowerCase() === name)?.[1];
  const nonce = get(SIGNATURE_HEADERS.nonce) ?? '';
  const signature = get(SIGNATURE_HEADERS.signature) ?? '';
  const signer = get(SIGNATURE_HEADERS.signer) ?? '';
  let ok = false;
  try {
    ok = nodeCrypto().verify(null, Buffer.from(stringToSign(req), 'utf8'), nodeCrypto().createPublicKey(publicKeyPem), Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new AivaultError('SIGNATURE_INVALID', 'the request signature does not verify');
  if (!(await guard.remember(signer, nonce, now))) throw new AivaultError('REPLAY_DETECTED', 'this nonce was already used');
}
