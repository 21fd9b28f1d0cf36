// Certificates made at test time with the openssl CLI: a CA, a server certificate for
// 127.0.0.1, client certificates signed by the CA, and one signed by nobody we trust.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherClientCert: string;
  otherClientKey: string;
  /** A second client certificate from the trusted CA (for rotation). */
  rotatedClientCert: string;
  rotatedClientKey: string;
  /** Server certificates that must be refused: for another name, expired, from an untrusted CA. */
  wrongNameCert: string;
  wrongNameKey: string;
  expiredCert: string;
  expiredKey: string;
  rogueServerCert: string;
  rogueServerKey: string;
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'aivault-pki-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  try {
    const key = (name: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
    const selfSigned = (name: string, cn: string) => ssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-days', '2', '-out', `${name}.crt`);
    const signed = (name: string, cn: string, issuer: string, ext?: string, days = '2') => {
      ssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
      if (ext) writeFileSync(join(dir, `${name}.ext`), ext);
      // A negative number of days gives a certificate that expired before it was made.
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', days, '-out', `${name}.crt`, ...(ext ? ['-extfile', `${name}.ext`] : []));
    };
    key('ca');
    selfSigned('ca', 'aivault test CA');
    key('server');
    signed('server', '127.0.0.1', 'ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    for (const c of ['client', 'rotated']) {
      key(c);
      signed(c, `agent-${c}`, 'ca', 'extendedKeyUsage=clientAuth\n');
    }
    key('rogue-ca');
    selfSigned('rogue-ca', 'rogue CA');
    key('other');
    signed('other', 'agent-other', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
    const serverExt = 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';
    key('wrong-name');
    signed('wrong-name', 'other.test', 'ca', 'subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth\n');
    key('expired');
    signed('expired', '127.0.0.1', 'ca', serverExt, '-1');
    key('rogue-server');
    signed('rogue-server', '127.0.0.1', 'rogue-ca', serverExt);
    return {
      ca: read('ca.crt'),
      serverCert: read('server.crt'),
      serverKey: read('server.key'),
      clientCert: read('client.crt'),
      clientKey: read('client.key'),
      otherClientCert: read('other.crt'),
      otherClientKey: read('other.key'),
      rotatedClientCert: read('rotated.crt'),
      rotatedClientKey: read('rotated.key'),
      wrongNameCert: read('wrong-name.crt'),
      wrongNameKey: read('wrong-name.key'),
      expiredCert: read('expired.crt'),
      expiredKey: read('expired.key'),
      rogueServerCert: read('rogue-server.crt'),
      rogueServerKey: read('rogue-server.key'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
