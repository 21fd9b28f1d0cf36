// `aivault owner …`: the identities allowed to manage the vault through the daemon.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { GlobalOptions } from '../context.ts';
import { ownerCall } from '../daemon-client.ts';
import { printJson, printLine, printTable } from '../output.ts';

export function registerOwner(program: Command): void {
  const owner = program.command('owner').description('owner identities (Ed25519 keys that sign owner calls to the daemon)');

  owner
    .command('add')
    .argument('<name>')
    .requiredOption('--public-key <file>', 'the new owner\'s Ed25519 public key (PEM)')
    .option('--json', 'print as JSON')
    .description('register another owner (only an existing owner can)')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { publicKey: string }>();
      const pem = await readFile(o.publicKey, 'utf8').catch(() => {
        throw new AivaultError('INVALID_ARGUMENT', 'cannot read --public-key');
      });
      const added = await ownerCall(o, 'owner.add', { name, publicKey: pem });
      if (o.json) return printJson(added);
      printLine(`added owner ${added.name} (${added.id})`);
    });

  owner
    .command('list')
    .option('--json', 'print as JSON')
    .description('list owners')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const list = await ownerCall(o, 'owner.list', {});
      if (o.json) return printJson(list);
      printTable(['NAME', 'ID', 'CREATED'], list.map((x) => [x.name, x.id, x.createdAt]));
    });

  owner
    .command('remove')
    .argument('<owner>', 'name or id')
    .option('--json', 'print as JSON')
    .description('remove an owner (never the last one)')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const removed = await ownerCall(o, 'owner.remove', { owner: ref });
      if (o.json) return printJson({ removed: removed.id });
      printLine(`removed owner ${removed.name}`);
    });
}
