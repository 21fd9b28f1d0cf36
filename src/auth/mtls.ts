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

/** The placeholders whose secrets must hold PEM (the passphrase is text). */
export const PEM_PLACEHOLDERS = ['cert', 'key', 'ca'] as const;

/** Whether `text` holds at least one PEM block (`-----BEGIN X-----` … `-----END X-----`). */
export function isPem(text: string): boolean {
  const begin = /-----BEGIN ([A-Z0-9 ]{1,64})-----/.exec(text);
  return begin !== null && text.includes(`-----END ${begin[1]}-----`, begin.index + begin[0].length);
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
      if (!cert || !key || !isPem(cert) || !isPem(key)) {
        throw new AivaultError('CREDENTIAL_INVALID', 'mtls needs a PEM certificate ({{cert}}) and a PEM private key ({{key}})');
      }
      const ca = secrets.get('ca');
      const passphrase = secrets.get('passphrase');
      return { cert, key, ...(ca ? { ca } : {}), ...(passphrase ? { passphrase } : {}) };
    },
  };
}
