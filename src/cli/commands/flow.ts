// `aivault flow …`: owner-defined secret flows, and running one (as the owner, or as an
// agent through the daemon).

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { FLOW_KINDS, type FlowResult } from '../../broker/flows.ts';
import type { FlowInput } from '../../broker/validate-definitions.ts';
import { AivaultError } from '../../errors.ts';
import { withServices } from '../broker-context.ts';
import type { GlobalOptions } from '../context.ts';
import { agentClientFromEnv, ownerCall } from '../daemon-client.ts';
import { printDocument, printFields, printJson, printLine, printTable } from '../output.ts';

type CreateOptions = GlobalOptions & Omit<FlowInput, 'id'>;

export function registerFlow(program: Command): void {
  const flow = program.command('flow').description('secret flows: send a secret, or acquire one into the vault without the agent seeing it');

  flow
    .command('create')
    .argument('<id>', 'group/name')
    .requiredOption('--mode <mode>', 'send_secret, acquire_secret or bidirectional_secret')
    .requiredOption('--target <url>', 'the URL the flow calls (fixed by the owner)')
    .option('--method <method>', 'HTTP method', 'POST')
    .option('--visibility <v>', 'passthrough (scrubbed body) or shape_only (types only); acquiring flows are always shape_only')
    .option('--kind <kind>', `a built-in acquire kind: ${Object.keys(FLOW_KINDS).join(', ')}`)
    .option('--store-field <field>', 'the response field holding the secret (custom acquiring flows)')
    .option('--store-alias <NAME>', 'the secret name to store it under')
    .option('--overwrite', 'rotate the stored secret when it exists (otherwise refused)')
    .option('--credential <name>', 'a custom credential whose secret the flow sends (send and bidirectional modes)')
    .option('--allow-http', 'owner decision: the target is plain http')
    .option('--allow-private-network', 'owner decision: the target may be a loopback or private address')
    .option('--json', 'print as JSON')
    .description('define a flow; grant it to agents like a capability')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<CreateOptions>();
      const created = await ownerCall(o, 'flow.create', {
        id,
        mode: o.mode,
        target: o.target,
        method: o.method,
        ...(o.visibility !== undefined ? { visibility: o.visibility } : {}),
        ...(o.kind !== undefined ? { kind: o.kind } : {}),
        ...(o.storeField !== undefined ? { storeField: o.storeField } : {}),
        ...(o.storeAlias !== undefined ? { storeAlias: o.storeAlias } : {}),
        ...(o.credential !== undefined ? { credential: o.credential } : {}),
        overwrite: o.overwrite === true,
        allowHttp: o.allowHttp === true,
        allowPrivateNetwork: o.allowPrivateNetwork === true,
      });
      if (o.json) return printJson(created);
      printLine(`created flow ${created.id} (${created.mode}, ${created.method} ${created.target})`);
    });

  flow
    .command('list')
    .option('--json', 'print as JSON')
    .description('list flows')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const list = await ownerCall(o, 'flow.list', {});
      if (o.json) return printJson(list);
      printTable(['FLOW', 'MODE', 'METHOD', 'TARGET', 'STORES'], list.map((f) => [f.id, f.mode, f.method, f.target, f.storeAlias ?? '-']));
    });

  flow
    .command('describe')
    .argument('<id>')
    .option('--json', 'print as JSON')
    .description('show a flow')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const f = await ownerCall(o, 'flow.describe', { id });
      if (o.json) return printJson(f);
      printFields([
        ['id', f.id],
        ['mode', f.mode],
        ['target', `${f.method} ${f.target}`],
        ['visibility', f.visibility],
        ['stores', f.storeAlias ? `${f.storeField} -> ${f.storeAlias}${f.overwrite ? ' (overwrite)' : ''}` : '-'],
        ['credential', f.credential ?? '-'],
      ]);
    });

  flow
    .command('delete')
    .argument('<id>')
    .description('delete a flow')
    .option('--json', 'print {id, deleted} as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { json?: boolean }>();
      const deleted = await ownerCall(o, 'flow.delete', { id });
      if (o.json) return printJson(deleted);
      printLine(`deleted flow ${id}`);
    });

  flow
    .command('run')
    .argument('<id>')
    .option('--body <text>', 'request body')
    .option('--body-file <path>', 'request body from a file')
    .option('--content-type <type>', 'content type of the body')
    .option('--json', 'print the agent-visible result as JSON')
    .description('run a flow; prints what an agent would see (never an acquired secret)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { body?: string; bodyFile?: string; contentType?: string }>();
      if (o.body !== undefined && o.bodyFile !== undefined) throw new AivaultError('INVALID_ARGUMENT', 'give --body or --body-file');
      const body = o.body !== undefined ? Buffer.from(o.body) : o.bodyFile !== undefined ? await readFile(o.bodyFile) : undefined;
      const input = { ...(body ? { body } : {}), ...(o.contentType ? { contentType: o.contentType } : {}) };
      const client = await agentClientFromEnv(o);
      const result: FlowResult = client ? await client.runFlow(id, input).finally(() => client.close()) : await withServices(o, ({ broker }) => broker.runFlow(id, input));
      if (o.json) return printJson(result);
      if (result.status === 'stored') printLine(`stored in ${result.alias} (upstream HTTP ${result.responseStatus})`);
      else printDocument(result.body ?? JSON.stringify(result.responseShape));
    });
}
