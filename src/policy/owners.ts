// Owner identities: Ed25519 key pairs whose private halves stay with their owners. The
// first is made by `aivault init`; others are added only by an existing owner, and the
// last one can never be removed. Owner calls to the daemon are signed like agent calls.

import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { AivaultError } from '../errors.ts';
import type { OwnerRecord, OwnerStorage } from '../storage/types.ts';
import type { AuditedChange } from './audited.ts';
import { assertSignedHead, signerOf, verifySignedRequest, type BodyReader, type ReplayGuard, type SignableRequest } from './request-signature.ts';

const OWNER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Normalises a PEM Ed25519 public key; anything else is refused. */
export function ed25519PublicKey(pem: string): string {
  // createPublicKey would take a private key too, and derive its public half: a private key
  // sent here has left its owner, which they should be told rather than have it accepted.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new AivaultError('INVALID_ARGUMENT', 'a private key was given where a public key belongs');
  let key;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new AivaultError('INVALID_ARGUMENT', 'not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AivaultError('INVALID_ARGUMENT', 'owner and agent keys must be Ed25519');
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/** What Owners works with (a Vault has all of it). */
export interface OwnersDeps {
  storage: OwnerStorage;
  audited: AuditedChange;
}

export class Owners {
  // Called through the object handed in, so a Vault's own methods keep their `this`.
  readonly #deps: OwnersDeps;

  constructor(deps: OwnersDeps) {
    this.#deps = deps;
  }

  /** The first owner: a new key pair, its private key written 0600 to `privateKeyPath`. */
  async bootstrap(privateKeyPath: string, name = 'owner'): Promise<OwnerRecord> {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(privateKeyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    return this.add(name, publicKey.export({ type: 'spki', format: 'pem' }).toString());
  }

  async add(name: string, publicKeyPem: string): Promise<OwnerRecord> {
    if (!OWNER_NAME.test(name)) throw new AivaultError('INVALID_ARGUMENT', 'an owner name is 1-64 lower-case letters, digits, ".", "_" or "-"');
    const owner: OwnerRecord = { id: randomUUID(), name, publicKey: ed25519PublicKey(publicKeyPem), createdAt: new Date().toISOString() };
    await this.#deps.audited({ action: 'owner.add', target: `owner:${owner.id}` }, () => this.#deps.storage.addOwner(owner));
    return owner;
  }

  list(): Promise<OwnerRecord[]> {
    return this.#deps.storage.listOwners();
  }

  async remove(ref: string): Promise<OwnerRecord> {
    const owner = await this.#deps.storage.getOwner(ref);
    if (!owner) throw new AivaultError('OWNER_NOT_FOUND', `no owner ${ref}`);
    await this.#deps.audited({ action: 'owner.remove', target: `owner:${owner.id}` }, async () => {
      if (!(await this.#deps.storage.removeOwner(owner.id))) throw new AivaultError('OWNER_NOT_FOUND', `no owner ${ref}`);
    });
    return owner;
  }

  /** The owner who signed `req`, and the body signed: signer and timestamp before `readBody`, then signature and nonce. */
  async authenticateSigned(req: Omit<SignableRequest, 'body'>, readBody: BodyReader, guard: ReplayGuard): Promise<{ owner: OwnerRecord; body: Buffer | undefined }> {
    const signer = signerOf(req);
    const owner = signer ? await this.#deps.storage.getOwner(signer) : undefined;
    if (!owner) throw new AivaultError('OWNER_ROUTE', 'owner routes need a request signed by a registered owner key');
    assertSignedHead(req.headers);
    const body = await readBody();
    await verifySignedRequest({ ...req, body }, owner.publicKey, guard);
    return { owner, body };
  }
}
