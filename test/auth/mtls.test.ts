import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { readAll, testBroker, type TestBroker } from '../helpers/broker.ts';
import { makePki, type Pki } from '../helpers/pki.ts';

describe('mtls against a local https server that requires a client certificate', () => {
  let pki: Pki;
  let server: Server;
  let host: string;
  let t: TestBroker;

  before(async () => {
    pki = makePki();
    server = createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ subject: peer.subject?.CN ?? null, path: req.url }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await testBroker();
  });
  after(async () => {
    await t.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('presents the client certificate from the vault; the server sees who it is', async () => {
    const cap = await t.custom({ name: 'bank', auth: 'mtls', secrets: { cert: pki.clientCert, key: pki.clientKey, ca: pki.ca }, hosts: [host], allowHttp: false, paths: ['/v2/payments'] });
    const res = await t.broker.invoke({ capability: cap, method: 'GET', path: '/v2/payments/1' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(await readAll(res.body)), { subject: 'agent-client', path: '/v2/payments/1' });
  });

  it('rebuilds the connection pool when the certificate rotates', async () => {
    const cred = await t.services.catalog.describeCredential('bank');
    await t.vault.rotateSecret(cred.bindings.get('cert')!, Buffer.from(pki.rotatedClientCert));
    await t.vault.rotateSecret(cred.bindings.get('key')!, Buffer.from(pki.rotatedClientKey));
    const res = await t.broker.invoke({ capability: 'bank/api', method: 'GET', path: '/v2/payments/2' });
    assert.equal(JSON.parse(await readAll(res.body)).subject, 'agent-rotated');
  });

  it('a certificate the server does not trust is refused by the server and reported as a TLS error', async () => {
    const cap = await t.custom({ name: 'rogue', auth: 'mtls', secrets: { cert: pki.otherClientCert, key: pki.otherClientKey, ca: pki.ca }, hosts: [host], allowHttp: false, paths: ['/v2'] });
    await assert.rejects(t.broker.invoke({ capability: cap, method: 'GET', path: '/v2/payments' }), (e) => isAivaultError(e, 'UPSTREAM_TLS_ERROR') && !e.message.includes('BEGIN'));
  });

  it('without the CA, the server certificate is not trusted (no silent skip of verification)', async () => {
    const cap = await t.custom({ name: 'noca', auth: 'mtls', secrets: { cert: pki.clientCert, key: pki.clientKey }, hosts: [host], allowHttp: false, paths: ['/v2'] });
    await assert.rejects(t.broker.invoke({ capability: cap, method: 'GET', path: '/v2/payments' }), (e) => isAivaultError(e, 'UPSTREAM_TLS_ERROR'));
  });

  it('refuses, at create and at update, a credential whose mtls secrets are not PEM, without showing them', async () => {
    const notPem = (e: unknown) => isAivaultError(e, 'CREDENTIAL_INVALID') && e.field === 'secretRefs' && !e.message.includes('not a certificate') && !e.message.includes('BEGIN PRIVATE');
    await assert.rejects(t.custom({ name: 'notpem', auth: 'mtls', secrets: { cert: 'not a certificate', key: pki.clientKey }, hosts: [host], allowHttp: false, paths: ['/v2'] }), notPem);
    await assert.rejects(t.custom({ name: 'notpem2', auth: 'mtls', secrets: { cert: pki.clientCert, key: pki.clientKey, ca: 'not a certificate' }, hosts: [host], allowHttp: false, paths: ['/v2'] }), notPem);
    const bad = await t.vault.createSecret({ name: 'NOT_PEM_CERT', value: Buffer.from('not a certificate') });
    const cred = await t.services.catalog.describeCredential('bank');
    await assert.rejects(t.definitions.updateCredential('bank', { secretRefs: { cert: bad.ref, key: `vault:secret:${cred.bindings.get('key')!}` } }), notPem);
  });

  it('refuses at invoke a credential whose secret was rotated to one that is not PEM', async () => {
    const cred = await t.services.catalog.describeCredential('bank');
    await t.vault.rotateSecret(cred.bindings.get('cert')!, Buffer.from('not a certificate'));
    await assert.rejects(t.broker.invoke({ capability: 'bank/api', method: 'GET', path: '/v2/x' }), (e) => isAivaultError(e, 'CREDENTIAL_INVALID'));
  });
});
