import { Option, type Command } from 'commander';
import { KEY_PROVIDER_KINDS, type KeyProviderKind } from '../../vault/key-providers/types.ts';
import { join } from 'node:path';
import { readPassphrase, vaultDir, type GlobalOptions } from '../context.ts';
import { note, printJson, printLine } from '../output.ts';
import { isInteractive } from '../prompt.ts';
import { AivaultError } from '../../errors.ts';

export const OWNER_KEY_FILE = 'owner.key';

interface InitOptions extends GlobalOptions {
  keyProvider: KeyProviderKind;
  keyFile?: string;
  storage?: string;
  guide: boolean;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a new vault (directory mode 0700, SQLite database, master key from the chosen provider)')
    .addOption(
      new Option('--key-provider <kind>', 'where the master key comes from: a passphrase (argon2id), a 0600 key file, or AIVAULT_MASTER_KEY')
        .choices(KEY_PROVIDER_KINDS)
        .default('passphrase'),
    )
    .option('--key-file <path>', 'key file for --key-provider keyfile (default: master.key in the vault directory; an existing file is used as is)')
    .option('--storage <url>', 'keep the vault in PostgreSQL (postgres://user@host:5432/db[?schema=name]; default $AIVAULT_DATABASE_URL, else the embedded SQLite file); the password is never written to disk: give it in the URL at run time, PGPASSWORD or ~/.pgpass')
    .option('--json', 'print the result as JSON')
    .option('--no-guide', 'skip the guide to a first stored key and invoke (on a terminal) and the next steps (elsewhere)')
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<InitOptions>();
      const [{ Vault }, { Owners }, { isDatabaseUrl }] = await Promise.all([import('../../vault/vault.ts'), import('../../policy/owners.ts'), import('../../storage/open.ts')]);
      const databaseUrl = opts.storage ?? process.env.AIVAULT_DATABASE_URL;
      if (databaseUrl !== undefined && !isDatabaseUrl(databaseUrl)) throw new AivaultError('INVALID_ARGUMENT', '--storage takes a postgres:// URL');
      const vault = await Vault.init({
        dir: vaultDir(opts),
        keyProvider: opts.keyProvider,
        ...(opts.keyFile !== undefined ? { keyFile: opts.keyFile } : {}),
        ...(databaseUrl ? { databaseUrl } : {}),
        readPassphrase,
      });
      try {
        // The first owner identity: its private key stays in the vault directory (0600).
        const ownerKey = join(vault.dir, OWNER_KEY_FILE);
        const owner = await new Owners(vault).bootstrap(ownerKey);
        if (opts.json) {
          printJson({ dir: vault.dir, vaultId: vault.vaultId, keyProvider: vault.keyProvider.kind, engine: vault.storage.engine, owner: { id: owner.id, name: owner.name, privateKey: ownerKey } });
          return;
        }
        printLine(`initialised vault ${vault.vaultId} in ${vault.dir} (key provider: ${vault.keyProvider.kind}; storage: ${Vault.describeLocation(vault.dir)})`);
        printLine(`owner ${owner.name} (${owner.id}); its Ed25519 private key is ${ownerKey}`);
        if (vault.keyProvider.kind === 'keyfile' && opts.keyFile === undefined) {
          note('note: the key file sits beside the vault, so anyone who can read the directory can open it; move it with --key-file for a stronger setup');
        }
        // --no-guide is for scripts (the demo, provisioning): they know their next step.
        if (!opts.guide) return;
        if (isInteractive()) {
          const [{ firstRunGuide }, { builtinRegistry }] = await Promise.all([import('../first-run.ts'), import('../../registry/registry.ts')]);
          await firstRunGuide(vault, await builtinRegistry());
          return;
        }
        note('next: aivault secrets create --name OPENAI_API_KEY --value-stdin   (any name from `aivault registry list`)');
        note('then: aivault secrets validate OPENAI_API_KEY; aivault invoke openai/models --path /v1/models; aivault agent create my-bot; aivault serve');
      } finally {
        await vault.close();
      }
    });
}
