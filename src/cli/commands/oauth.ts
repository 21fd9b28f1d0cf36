// `aivault oauth login PROVIDER`: seed a built-in o_auth2 provider with a refresh token
// the owner already has (read from stdin), and its client id and secret.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { builtinRegistry } from '../../registry/registry.ts';
import { credentialsOf } from '../../registry/types.ts';
import { withVault, type GlobalOptions } from '../context.ts';
import { readStdin } from '../input.ts';
import { isInteractive, readHidden } from '../prompt.ts';
import { printJson, printLine } from '../output.ts';
import type { Vault } from '../../vault/vault.ts';

interface LoginOptions extends GlobalOptions {
  clientId: string;
  clientSecretFile?: string;
}

/** Creates the secret, or rotates it when it exists (keeping its pin). */
async function put(vault: Vault, name: string, value: Buffer): Promise<'created' | 'rotated'> {
  const existing = await vault.storage.listSecrets({ name, scope: 'global' });
  if (existing.length > 0) {
    await vault.rotateSecret(existing[0]!.id, value);
    return 'rotated';
  }
  await vault.createSecret({ name, value });
  return 'created';
}

export function registerOAuth(program: Command): void {
  const oauth = program.command('oauth').description('OAuth2 providers');
  oauth
    .command('login')
    .description("store an o_auth2 provider's client id, client secret and a refresh token you already have (the refresh token from stdin)")
    .argument('<provider>', 'a built-in o_auth2 provider, e.g. spotify, google, dropbox')
    .requiredOption('--client-id <id>', 'the OAuth client id')
    .option('--client-secret-file <path>', 'the client secret, from a file (otherwise asked for on the terminal)')
    .option('--json', 'print as JSON')
    .action(async (providerId: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<LoginOptions>();
      const provider = (await builtinRegistry()).provider(providerId);
      // The provider's own o_auth2 credential, or its o_auth2 alternative (e.g. gemini's session beside its API key).
      const credential = credentialsOf(provider).find((c) => typeof c.auth === 'object' && 'o_auth2' in c.auth);
      if (!credential || !(typeof credential.auth === 'object' && 'o_auth2' in credential.auth)) throw new AivaultError('INVALID_ARGUMENT', `${providerId} has no o_auth2 credential`);
      const names = Object.fromEntries(Object.entries(credential.vaultSecrets).map(([name, placeholder]) => [placeholder, name]));
      const values = new Map<string, Buffer>();
      values.set('client_id', Buffer.from(o.clientId, 'utf8'));
      if (names.client_secret) {
        const secret = o.clientSecretFile !== undefined
          ? (await readFile(o.clientSecretFile)).toString('utf8').replace(/\r?\n$/, '')
          : isInteractive()
            ? await readHidden('Client secret: ')
            : undefined;
        if (!secret) throw new AivaultError('INVALID_ARGUMENT', 'give the client secret with --client-secret-file (or run from a terminal)');
        values.set('client_secret', Buffer.from(secret, 'utf8'));
      }
      if (credential.auth.o_auth2.grant_type === 'refresh_token') {
        const token = isInteractive() ? Buffer.from(await readHidden('Refresh token: '), 'utf8') : (await readStdin(64 * 1024)).subarray(0);
        const trimmed = Buffer.from(token.toString('utf8').trim(), 'utf8');
        if (trimmed.length === 0) throw new AivaultError('INVALID_ARGUMENT', 'no refresh token on stdin');
        values.set('refresh_token', trimmed);
      }
      const done: Record<string, string> = {};
      await withVault(o, async (vault) => {
        for (const [placeholder, value] of values) {
          const name = names[placeholder];
          if (name) done[name] = await put(vault, name, value);
          value.fill(0);
        }
      });
      if (o.json) return printJson({ provider: providerId, secrets: done });
      for (const [name, what] of Object.entries(done)) printLine(`${what} ${name}`);
      printLine(`${providerId} is ready; the first invoke obtains an access token`);
    });
}
