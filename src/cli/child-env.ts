// The environment `aivault run` hands its child, an agent: the owner's, minus every variable
// that carries a credential of the vault, its key, its database or its owner, and minus
// every variable that holds a stored secret or such a credential in any form the response
// scrubber recognises (src/broker/scrub). `run --help` states the same rule (ENV_RULE).

import { Scrubber } from '../broker/scrub/scrubber.ts';

export const ENV_RULE = `The command's environment is yours without:
  - AIVAULT_* variables (run sets its own: AIVAULT_AGENT_TOKEN, AIVAULT_URL,
    AIVAULT_SOCKET, AIVAULT_GATEWAY_*);
  - libpq's credential variables: PGPASSWORD, PGPASSFILE, PGSERVICE,
    PGSERVICEFILE, PGSYSCONFDIR, PGSSLKEY, PGSSLCERT (and PGSSLPASSWORD);
  - variables named like a registry secret (OPENAI_API_KEY, ...);
  - any variable whose name or value holds a URL with a password, or a stored
    secret, the vault's passphrase, master key or database password, or an
    agent token, as the response scrubber finds them: in any case, inside a
    longer value, as hex or base64, percent-, JSON- or HTML-escaped.
The names dropped are printed on stderr; values never are.`;

/** Inherited variables of aivault's own are never passed on: run sets the ones the child needs. */
const OWN_PREFIX = 'AIVAULT_';

/** libpq's variables that hold a credential or say where one is (PGSSLPASSWORD: some drivers'). */
const LIBPQ_CREDENTIALS = new Set(['PGPASSWORD', 'PGPASSFILE', 'PGSERVICE', 'PGSERVICEFILE', 'PGSYSCONFDIR', 'PGSSLKEY', 'PGSSLCERT', 'PGSSLPASSWORD']);

/** Variables whose values are themselves credentials: a copy under another name goes too. */
const CREDENTIAL_VALUES = ['AIVAULT_PASSPHRASE', 'AIVAULT_NEW_PASSPHRASE', 'AIVAULT_MASTER_KEY', 'AIVAULT_NEW_MASTER_KEY', 'AIVAULT_AGENT_TOKEN', 'PGPASSWORD', 'PGSSLPASSWORD'];

/** A URL carrying a password: `scheme://user:password@`, or a `password`/`sslpassword` parameter. */
const URL_WITH_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/(?:[^\s/?#@:]*:[^\s/?#@]+@|[^\s#]*[?&](?:ssl)?password=)/i;

/** The credentials `parent` itself carries: the values above and the database URL's password. */
function credentialsIn(parent: NodeJS.ProcessEnv): string[] {
  const out = CREDENTIAL_VALUES.map((name) => parent[name]).filter((v): v is string => v !== undefined);
  const url = parent.AIVAULT_DATABASE_URL;
  if (url) {
    try {
      const parsed = new URL(url);
      if (parsed.password) out.push(decodeURIComponent(parsed.password));
      for (const [k, v] of parsed.searchParams) if (/^(ssl)?password$/i.test(k)) out.push(v);
    } catch {
      // not a URL: dropped by name, and holds no password to look for
    }
  }
  return out;
}

/**
 * `parent` without what the rule above drops, and the names dropped (never the values).
 * `secretNames`: the registry's provider secret names; `secrets`: every stored value.
 */
export function childEnvironment(parent: NodeJS.ProcessEnv, secretNames: ReadonlySet<string>, secrets: Iterable<string>): { env: NodeJS.ProcessEnv; dropped: string[] } {
  const scrubber = new Scrubber([...secrets, ...credentialsIn(parent)]);
  const env: NodeJS.ProcessEnv = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined) continue;
    const drop =
      name.startsWith(OWN_PREFIX) || LIBPQ_CREDENTIALS.has(name) || secretNames.has(name) || URL_WITH_PASSWORD.test(value) || scrubber.contains(`${name}=${value}`);
    if (drop) dropped.push(scrubber.contains(name) ? '(a name holding a secret)' : name);
    else env[name] = value;
  }
  return { env, dropped };
}
