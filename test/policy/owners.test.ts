// Owner identities against in-memory storage and a recording audit: who can be added, that
// the last owner stays, and that only a registered owner's signature opens the owner routes.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAivaultError, type ErrorCode } from '../../src/errors.ts';
import { ed25519PublicKey, Owners } from '../../src/policy/owners.ts';
import { ReplayGuard, signRequest } from '../../src/policy/request-signature.ts';
import { MemoryStorage, recordingAudit } from '../helpers/memory-storage.ts';

const code = (c: ErrorCode) => (e: unknown) => isAivaultError(e, c);

function setup() {
  const storage = new MemoryStorage();
  const { audited, records } = recordingAudit();
  return { storage, records, owners: new Owners({ storage, audited }) };
}

function ed25519() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), privateKey };
}

describe('owner keys', () => {
  it('an Ed25519 public key is kept in one normal form', () => {
    const { publicPem } = ed25519();
    assert.equal(ed25519PublicKey(`\n${publicPem.replace(/\n/g, '\r\n')}\n`), publicPem);
  });

  it('anything but an Ed25519 public key is refused', () => {
    const others = [
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
      generateKeyPairSync('x25519').publicKey,
      generateKeyPairSync('ed448').publicKey,
    ].map((k) => k.export({ type: 'spki', format: 'pem' }).toString());
    for (const pem of [...others, '', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n']) {
      assert.throws(() => ed25519PublicKey(pem), code('INVALID_ARGUMENT'), pem.slice(0, 40));
    }
  });

  it('a private key is refused, not quietly turned into its public half, and never repeated back', () => {
    const { privatePem } = ed25519();
    const body = privatePem.split('\n')[1]!;
    for (const pem of [privatePem, createPrivateKey(privatePem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString()]) {
      assert.throws(() => ed25519PublicKey(pem), (e) => isAivaultError(e, 'INVALID_ARGUMENT') && !e.message.includes(body));
    }
  });
});

describe('owners', () => {
  it('are added audited, listed, and removed by id or name', async () => {
    const { owners, records } = setup();
    const laptop = await owners.add('laptop', ed25519().publicPem);
    const desktop = await owners.add('desktop', ed25519().publicPem);
    const phone = await owners.add('phone', ed25519().publicPem);
    assert.deepEqual((await owners.list()).map((o) => o.name).sort(), ['desktop', 'laptop', 'phone']);
    assert.equal((await owners.remove('desktop')).id, desktop.id);
    assert.equal((await owners.remove(laptop.id)).name, 'laptop');
    assert.deepEqual((await owners.list()).map((o) => o.id), [phone.id]);
    assert.deepEqual(
      records.map((r) => [r.draft.action, r.draft.target, r.ended]),
      [['owner.add', `owner:${laptop.id}`, 'ok'], ['owner.add', `owner:${desktop.id}`, 'ok'], ['owner.add', `owner:${phone.id}`, 'ok'], ['owner.remove', `owner:${desktop.id}`, 'ok'], ['owner.remove', `owner:${laptop.id}`, 'ok']],
    );
  });

  it('a bad name, a taken name or a bad key is refused, and nothing is added', async () => {
    const { owners, records } = setup();
    await owners.add('laptop', ed25519().publicPem);
    for (const name of ['', 'Laptop', '.laptop', 'lap top', 'a'.repeat(65)]) await assert.rejects(owners.add(name, ed25519().publicPem), code('INVALID_ARGUMENT'), name);
    await assert.rejects(owners.add('laptop', ed25519().publicPem), code('OWNER_ALREADY_EXISTS'));
    await assert.rejects(owners.add('desktop', 'not a key'), code('INVALID_ARGUMENT'));
    await assert.rejects(owners.add('desktop', ed25519().privatePem), code('INVALID_ARGUMENT'));
    assert.equal((await owners.list()).length, 1);
    assert.deepEqual(records.map((r) => r.ended), ['ok', 'OWNER_ALREADY_EXISTS'], 'refused before any change is tried, except the taken name');
  });

  it('the last owner cannot be removed (LAST_OWNER, audited as failed); an unknown one is not found', async () => {
    const { owners, records } = setup();
    const only = await owners.add('laptop', ed25519().publicPem);
    await assert.rejects(owners.remove('laptop'), code('LAST_OWNER'));
    await assert.rejects(owners.remove(only.id), code('LAST_OWNER'));
    await assert.rejects(owners.remove('ghost'), code('OWNER_NOT_FOUND'));
    assert.deepEqual((await owners.list()).map((o) => o.id), [only.id]);
    assert.deepEqual(records.filter((r) => r.draft.action === 'owner.remove').map((r) => r.ended), ['LAST_OWNER', 'LAST_OWNER']);
  });

  it('bootstrap writes the first owner\'s private key 0600, once, matching the registered public key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aivault-owners-'));
    try {
      const { owners } = setup();
      const path = join(dir, 'owner.key');
      const owner = await owners.bootstrap(path);
      assert.equal(owner.name, 'owner');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(createPublicKey(readFileSync(path, 'utf8')).export({ type: 'spki', format: 'pem' }).toString(), owner.publicKey);
      await assert.rejects(owners.bootstrap(path, 'second'), /EEXIST/);
      assert.equal((await owners.list()).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('owner signatures', () => {
  const head = (signer: string, privateKey: Parameters<typeof signRequest>[2], nonce: string, body = Buffer.from('{"op":"owner.list"}')) => ({
    method: 'POST',
    target: '/v1/owner',
    headers: signRequest({ method: 'POST', target: '/v1/owner', headers: [['content-type', 'application/json']], body }, signer, privateKey, Date.now(), nonce),
    body,
  });

  it('only a registered owner\'s key opens the owner routes; a removed owner\'s no longer does', async () => {
    const { owners } = setup();
    const guard = new ReplayGuard(new MemoryStorage());
    const laptop = ed25519();
    const other = ed25519();
    const owner = await owners.add('laptop', laptop.publicPem);
    await owners.add('desktop', ed25519().publicPem);
    let reads = 0;
    const reader = (body: Buffer) => async () => (reads++, body);

    const good = head(owner.id, laptop.privateKey, 'a'.repeat(20));
    assert.equal((await owners.authenticateSigned(good, reader(good.body), guard)).owner.id, owner.id);
    await assert.rejects(owners.authenticateSigned(good, reader(good.body), guard), code('REPLAY_DETECTED'));

    const forged = head(owner.id, other.privateKey, 'b'.repeat(20));
    await assert.rejects(owners.authenticateSigned(forged, reader(forged.body), guard), code('SIGNATURE_INVALID'));
    const rebodied = head(owner.id, laptop.privateKey, 'c'.repeat(20));
    await assert.rejects(owners.authenticateSigned(rebodied, reader(Buffer.from('{"op":"owner.remove"}')), guard), code('SIGNATURE_INVALID'));

    reads = 0;
    const stranger = head('00000000-0000-4000-8000-000000000000', other.privateKey, 'd'.repeat(20));
    await assert.rejects(owners.authenticateSigned(stranger, reader(stranger.body), guard), code('OWNER_ROUTE'));
    const byName = head('laptop', laptop.privateKey, 'e'.repeat(20));
    await assert.rejects(owners.authenticateSigned(byName, reader(byName.body), guard), code('OWNER_ROUTE'), 'a signer is named by id');
    await owners.remove('laptop');
    const removed = head(owner.id, laptop.privateKey, 'f'.repeat(20));
    await assert.rejects(owners.authenticateSigned(removed, reader(removed.body), guard), code('OWNER_ROUTE'));
    assert.equal(reads, 0, 'no body is read for a signer who is not an owner');
  });
});
