// `aivault secrets ingest NAME`: receive one secret value over a one-shot loopback
// endpoint (src/cli/ingest-endpoint.ts), so another local program or a browser form can
// hand a key over without it touching the terminal. The sender is answered after the
// value is stored, never before.

import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { assertSecretName } from '../../vault/names.ts';
import type { SecretInfo } from '../../vault/vault.ts';
import { withVault, type GlobalOptions } from '../context.ts';
import { note, printLine } from '../output.ts';

/** The longest an ingest endpoint stays open, in seconds. */
export const MAX_INGEST_SECONDS = 3600;

function timeoutSeconds(raw: string): number {
  const seconds = /^[0-9]{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(seconds >= 1 && seconds <= MAX_INGEST_SECONDS)) throw new AivaultError('INVALID_ARGUMENT', `--timeout is a whole number of seconds from 1 to ${MAX_INGEST_SECONDS}`);
  return seconds;
}

export function registerIngest(secrets: Command): void {
  secrets
    .command('ingest')
    .argument('<name>', 'the secret to create (or rotate, if it exists)')
    .option('--timeout <seconds>', `give up after this long (1 to ${MAX_INGEST_SECONDS})`, '600')
    .option('--json', 'print {url, token} as JSON, then the stored secret')
    .description('receive one value on a one-shot 127.0.0.1 endpoint (POST it with the token, or open the URL in a browser); the sender is answered once it is stored')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { timeout: string }>();
      assertSecretName(name);
      const seconds = timeoutSeconds(o.timeout);
      // node:http is imported here, not with the command tree: importing it loads Node's bundled undici.
      const { receiveOne } = await import('../ingest-endpoint.ts');
      // Unlocked first: a passphrase prompt must not race the sender, and a vault that
      // cannot be opened is known before anyone is told to send.
      const info = await withVault(o, (vault) =>
        receiveOne<SecretInfo>({
          timeoutMs: seconds * 1000,
          announce(url, token) {
            // One JSON object per line: a caller reads the first line, then posts.
            if (o.json) printLine(JSON.stringify({ url, token }));
            else {
              printLine(`POST the value to ${url} with header x-ingest-token: ${token}`);
              note(`e.g. curl --data-binary @FILE -H 'x-ingest-token: ${token}' ${url}`);
              note(`or open ${url}?t=${token} in a browser on this machine; waiting up to ${seconds} s`);
            }
          },
          async store(value) {
            const existing = await vault.storage.listSecrets({ name, scope: 'global' });
            return existing.length > 0 ? vault.rotateSecret(existing[0]!.id, value) : vault.createSecret({ name, value });
          },
          receipt: (stored) => `stored ${stored.name} (version ${stored.currentVersion}); you can close this page`,
        }),
      );
      if (o.json) printLine(JSON.stringify({ name: info.name, ref: info.ref, version: info.currentVersion }));
      else printLine(`stored ${info.name} (${info.ref}, version ${info.currentVersion})`);
    });
}
