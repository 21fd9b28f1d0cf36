// `mtls`: the client certificate and key (PEM, from secrets) authenticate the TLS
// connection itself; `ca` (optional) is the bundle the upstream's certificate must chain
// to, instead of the system roots. The broker keeps one connection pool per credential
// and replaces it when a secret rotates.

import { AivaultError } from '../errors.ts';
import type { AuthStrategy } from './types.ts';

export interface ClientTls {
  cert: string;
  key: string;
  ca?: string;
  passphrase?: string;
}

export function mtlsStrategy(): AuthStrategy {
  return {
    kind: 'mtls',
    ownedHeaders: [],
    ownedQueryParams: [],
    apply: () => [],
    tls(secrets) {
      const cert = secrets.get('cert');
      const key = secrets.get('key');
      if (!cert?.includes('-----BEGIN') || !key?.includes('-----BEGIN')) {
        throw new AivaultError('CREDENTIAL_INVALID', 'mtls needs a PEM certificate ({{cert}}) and a PEM private key ({{key}})');
      }
      const ca = secrets.get('ca');
      const passphrase = secrets.get('passphrase');
      return { cert, key, ...(ca ? { ca } : {}), ...(passphrase ? { passphrase } : {}) };
    },
  };
}
