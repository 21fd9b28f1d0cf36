import { Option, type Command } from 'commander';
import { KEY_PROVIDER_KINDS, type KeyProviderKind } from '../../vault/key-providers/index.ts';
import { join } from 'node:path';
import { Owners } from '../../policy/owners.ts';
import { Vault } from '../../vault/vault.ts';

export const OWNER_KEY_FILE = 'owner.key';
import { readPassphrase, vaultDir, type GlobalOptions } from '../context.ts';
import { note, printJson, printLine } from '../output.ts';

interface InitOptions extends GlobalOptions {
  keyProvider: KeyProviderKind;
  keyFile?: string;
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
    .option('--json', 'print the result as JSON')
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<InitOptions>();
      const vault = await Vault.init({
        dir: vaultDir(opts),
        keyProvider: opts.keyProvider,
        ...(opts.keyFile !== undefined ? { keyFile: opts.keyFile } : {}),
        readPassphrase,
      });
      try {
        // The first owner identity: its private key stays in the vault directory (0600).
        const ownerKey = join(vault.dir, OWNER_KEY_FILE);
        const owner = await new Owners(vault).bootstrap(ownerKey);
        if (opts.json) {
          printJson({ dir: vault.dir, vaultId: vault.vaultId, keyProvider: vault.keyProvider.kind, owner: { id: owner.id, name: owner.name, privateKey: ownerKey } });
          return;
        }
        printLine(`initialised vault ${vault.vaultId} in ${vault.dir} (key provider: ${vault.keyProvider.kind})`);
        printLine(`owner ${owner.name} (${owner.id}); its Ed25519 private key is ${ownerKey}`);
        note('next: aivault secrets create --name OPENAI_API_KEY --value-stdin   (any name from `aivault registry list`)');
        note('then: aivault capability list; aivault invoke openai/models; aivault agent create my-bot; aivault serve');
        if (vault.keyProvider.kind === 'keyfile' && opts.keyFile === undefined) {
          note('note: the key file sits beside the vault, so anyone who can read the directory can open it; move it with --key-file for a stronger setup');
        }
      } finally {
        await vault.close();
      }
    });
}
