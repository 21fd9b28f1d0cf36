// `aivault rotate-master`: a new master key (key file, passphrase or environment key), every
// data key rewrapped in one transaction. Interrupted, the vault still opens with the old
// key; finished, only with the new one.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { KeyProviderKind } from '../../vault/key-providers/index.ts';
import { withVault, type GlobalOptions } from '../context.ts';
import { note, printJson, printLine } from '../output.ts';
import { isInteractive, readHidden } from '../prompt.ts';

interface RotateOptions extends GlobalOptions {
  newKey?: boolean;
  keyFile?: string;
  newPassphrase?: boolean;
  newEnvKey?: boolean;
  json?: boolean;
}

async function newPassphrase(): Promise<string> {
  const fromEnv = process.env.AIVAULT_NEW_PASSPHRASE;
  if (fromEnv !== undefined) return fromEnv;
  if (!isInteractive()) throw new AivaultError('VAULT_LOCKED', 'set AIVAULT_NEW_PASSPHRASE or run from a terminal to give the new passphrase');
  const first = await readHidden('New vault passphrase: ');
  if ((await readHidden('Repeat new passphrase: ')) !== first) throw new AivaultError('INVALID_ARGUMENT', 'the passphrases differ; nothing was changed');
  return first;
}

export function registerRotateMaster(program: Command): void {
  program
    .command('rotate-master')
    .description('replace the master key: a new key file, passphrase or environment key; every data key rewrapped atomically')
    .option('--new-key', 'a new key file (default: a new file beside the vault; never an existing file)')
    .option('--key-file <path>', 'where --new-key writes the new key file (must not exist)')
    .option('--new-passphrase', 'a new passphrase (AIVAULT_NEW_PASSPHRASE, or asked on the terminal)')
    .option('--new-env-key', 'a new key from AIVAULT_NEW_MASTER_KEY (afterwards, set AIVAULT_MASTER_KEY to it)')
    .option('--json', 'print {keyProvider, versions} as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<RotateOptions>();
      const chosen = [o.newKey, o.newPassphrase, o.newEnvKey].filter(Boolean).length;
      if (chosen > 1) throw new AivaultError('INVALID_ARGUMENT', 'give one of --new-key, --new-passphrase, --new-env-key');
      if (o.keyFile !== undefined && !o.newKey) throw new AivaultError('INVALID_ARGUMENT', '--key-file goes with --new-key');
      const result = await withVault(o, async (vault) => {
        const kind: KeyProviderKind = o.newKey ? 'keyfile' : o.newPassphrase ? 'passphrase' : o.newEnvKey ? 'env' : vault.keyProvider.kind;
        if (kind === 'keyfile') {
          const file = o.keyFile ?? `master-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}.key`;
          // An existing file would be taken as is: it could be the old key.
          if (existsSync(join(vault.dir, file)) || existsSync(file)) throw new AivaultError('INVALID_ARGUMENT', `the key file ${file} already exists; rotation writes a new one`);
          return vault.rotateMaster({ kind, keyFile: file });
        }
        if (kind === 'env') {
          const fresh = process.env.AIVAULT_NEW_MASTER_KEY;
          if (!fresh) throw new AivaultError('VAULT_LOCKED', 'set AIVAULT_NEW_MASTER_KEY to the new key (32 random bytes, base64)');
          return vault.rotateMaster({ kind, env: { ...process.env, AIVAULT_MASTER_KEY: fresh } });
        }
        return vault.rotateMaster({ kind, readPassphrase: () => newPassphrase() });
      });
      if (o.json) return printJson({ keyProvider: result.keyProvider, versions: result.versions });
      printLine(`master key rotated (${result.keyProvider.kind}${result.keyProvider.kind === 'keyfile' ? `: ${result.keyProvider.path}` : ''}); ${result.versions} data keys rewrapped`);
      note('the old key no longer opens this vault; restart daemons with the new key: until then they refuse every request that needs a secret (VAULT_DECRYPT_FAILED) and every secret write');
      if (result.keyProvider.kind === 'env') note('set AIVAULT_MASTER_KEY to the value of AIVAULT_NEW_MASTER_KEY from now on');
      if (result.keyProvider.kind === 'keyfile') note('the old key file is left in place: delete it once you have a backup of the new one');
    });
}
