// `aivault credential …`: bind secrets to an auth strategy and a set of hosts.

import { Option, type Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import type { AuthConfig } from '../../registry/types.ts';
import { collect, splitHeader, splitPair } from '../collect.ts';
import type { GlobalOptions } from '../context.ts';
import { endpointFields } from '../endpoint-fields.ts';
import { ownerCall } from '../daemon-client.ts';
import { messageWithFlags } from '../flags.ts';
import { note, printFields, printJson, printLine, printTable } from '../output.ts';

const AUTH_KINDS = ['header', 'query', 'path', 'basic', 'multi_header', 'multi_query', 'o_auth2', 'aws_sig_v4', 'hmac', 'mtls'] as const;
const HMAC_COMPONENTS = ['timestamp', 'method', 'path', 'path_and_query', 'body'] as const;

interface CreateOptions extends GlobalOptions {
  provider: string;
  secretRef: string[];
  auth: string;
  headerName?: string;
  valueTemplate?: string;
  paramName?: string;
  prefixTemplate?: string;
  header?: string[];
  param?: string[];
  host?: string[];
  allowHttp?: boolean;
  allowPrivateNetwork?: boolean;
  anyTenant?: boolean;
  service?: string;
  region?: string;
  algorithm?: string;
  signed?: string;
  separator?: string;
  encoding?: string;
  timestampHeader?: string;
  timestampFormat?: string;
  grantType?: string;
  tokenEndpoint?: string;
  scope?: string[];
  clientAuth?: string;
}

function usage(message: string): AivaultError {
  return new AivaultError('INVALID_ARGUMENT', message);
}

/** Builds the registry-format `auth` object from the flags of `credential create`. */
export function authFromFlags(o: CreateOptions): AuthConfig {
  switch (o.auth) {
    case 'header':
      if (!o.headerName) throw usage('--auth header needs --header-name');
      return { header: { header_name: o.headerName, value_template: o.valueTemplate ?? '{{secret}}' } };
    case 'query':
      if (!o.paramName) throw usage('--auth query needs --param-name');
      return { query: { param_name: o.paramName, ...(o.valueTemplate ? { value_template: o.valueTemplate } : {}) } };
    case 'path':
      if (!o.prefixTemplate) throw usage('--auth path needs --prefix-template, e.g. "/bot{{secret}}"');
      return { path: { prefix_template: o.prefixTemplate } };
    case 'basic':
      return 'basic';
    case 'multi_header':
      if (!o.header?.length) throw usage("--auth multi_header needs one or more --header 'Name: {{placeholder}}'");
      return { multi_header: o.header.map((h) => { const [header_name, value_template] = splitOrUsage(splitHeader, h); return { header_name, value_template }; }) };
    case 'multi_query':
      if (!o.param?.length) throw usage("--auth multi_query needs one or more --param 'name={{placeholder}}'");
      return { multi_query: o.param.map((p) => { const [param_name, value_template] = splitOrUsage(splitPair, p); return { param_name, value_template }; }) };
    case 'aws_sig_v4':
      if (!o.service || !o.region) throw usage('--auth aws_sig_v4 needs --service and --region');
      return { aws_sig_v4: { service: o.service, region: o.region } };
    case 'hmac': {
      if (!o.headerName || !o.valueTemplate) throw usage("--auth hmac needs --header-name and --value-template (with {{signature}})");
      const signed = o.signed?.split(',').map((c) => c.trim());
      if (signed?.some((c) => !(HMAC_COMPONENTS as readonly string[]).includes(c))) throw usage(`--signed takes a comma list of ${HMAC_COMPONENTS.join(', ')}`);
      return {
        hmac: {
          algorithm: (o.algorithm ?? 'sha256') as 'sha256' | 'sha512',
          header_name: o.headerName,
          value_template: o.valueTemplate,
          ...(o.encoding ? { encoding: o.encoding as 'hex' | 'base64' } : {}),
          ...(signed ? { signed: signed as (typeof HMAC_COMPONENTS)[number][] } : {}),
          ...(o.separator !== undefined ? { separator: o.separator } : {}),
          ...(o.timestampHeader ? { timestamp_header: o.timestampHeader } : {}),
          ...(o.timestampFormat ? { timestamp_format: o.timestampFormat as 'unix' | 'unix_ms' | 'iso8601' } : {}),
          ...(o.header?.length ? { extra_headers: o.header.map((h) => { const [header_name, value_template] = splitOrUsage(splitHeader, h); return { header_name, value_template }; }) } : {}),
        },
      };
    }
    case 'mtls':
      return 'mtls';
    case 'o_auth2':
      if (!o.tokenEndpoint) throw usage('--auth o_auth2 needs --token-endpoint');
      return {
        o_auth2: {
          grant_type: (o.grantType ?? 'refresh_token') as 'refresh_token' | 'client_credentials',
          token_endpoint: o.tokenEndpoint,
          ...(o.scope?.length ? { scopes: o.scope } : {}),
          ...(o.clientAuth ? { client_auth: o.clientAuth as 'basic' | 'post' } : {}),
        },
      };
    default:
      throw usage(`unknown --auth ${o.auth}; use one of ${AUTH_KINDS.join(', ')}`);
  }
}

function splitOrUsage(split: (s: string) => [string, string], raw: string): [string, string] {
  try {
    return split(raw);
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** `PLACEHOLDER=vault:secret:ID`, or a bare reference binding {{secret}}. */
export function parseSecretRefs(refs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of refs) {
    const eq = raw.indexOf('=');
    const [placeholder, ref] = eq > 0 ? [raw.slice(0, eq), raw.slice(eq + 1)] : ['secret', raw];
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(placeholder)) throw usage('a --secret-ref placeholder is lower-case letters, digits and "_" (e.g. api_key=vault:secret:ID)');
    if (out[placeholder] !== undefined) throw usage(`{{${placeholder}}} is bound twice`);
    out[placeholder] = ref;
  }
  return out;
}

/** The flags that spell out a strategy beside --auth (create's and update's). */
const STRATEGY_FLAGS = ['headerName', 'valueTemplate', 'paramName', 'prefixTemplate', 'header', 'param', 'service', 'region', 'algorithm', 'signed', 'separator', 'encoding', 'timestampHeader', 'timestampFormat', 'grantType', 'tokenEndpoint', 'scope', 'clientAuth'] as const;

/** What the owner reads after a create or an update: the hosts requests will be refused at, by the flag that changes it. */
function printWarnings(warnings: ReadonlyArray<{ field: string; message: string }>): void {
  for (const w of warnings) note(`warning: ${messageWithFlags(w)}`);
}

/** The strategy's flags, after --auth. */
function strategyFlags(cmd: Command): Command {
  return cmd
    .option('--header-name <name>', 'header to set (--auth header, hmac)')
    .option('--value-template <template>', 'value rendered from {{placeholders}} (--auth header/query; hmac: must hold {{signature}}); default {{secret}}')
    .option('--param-name <name>', 'query parameter to set (--auth query)')
    .option('--prefix-template <template>', 'path prefix, e.g. /bot{{secret}} (--auth path)')
    .option('--header <header>', "'Name: {{placeholder}}' (--auth multi_header; hmac: extra headers such as a key id; repeatable)", collect)
    .option('--param <param>', "'name={{placeholder}}' (--auth multi_query, repeatable)", collect)
    .option('--service <name>', 'AWS service signing name, e.g. bedrock, s3 (--auth aws_sig_v4; placeholders access_key_id, secret_access_key, optional session_token)')
    .option('--region <region>', 'AWS region, e.g. us-east-1 (--auth aws_sig_v4; a region in the host name wins)')
    .option('--algorithm <alg>', 'sha256 or sha512 (--auth hmac; placeholder secret is the key)')
    .option('--signed <parts>', 'what hmac signs, in order: comma list of timestamp, method, path, path_and_query, body (default body)')
    .option('--separator <text>', 'joins the signed parts (--auth hmac; default none)')
    .option('--encoding <enc>', 'hex or base64 signature (--auth hmac; default hex)')
    .option('--timestamp-header <name>', 'header carrying the signed timestamp (--auth hmac)')
    .option('--timestamp-format <fmt>', 'unix, unix_ms or iso8601 (--auth hmac; default unix)')
    .option('--grant-type <grant>', 'refresh_token or client_credentials (--auth o_auth2; placeholders client_id, client_secret, refresh_token)')
    .option('--token-endpoint <url>', 'the token endpoint (--auth o_auth2)')
    .option('--scope <scope>', 'scope to request (--auth o_auth2, repeatable)', collect)
    .option('--client-auth <method>', 'basic (client_secret_basic) or post (client_secret_post) (--auth o_auth2; default basic)');
}

export function registerCredential(program: Command): void {
  const credential = program.command('credential').description('credentials: an auth strategy bound to secrets and hosts');

  const create = credential
    .command('create')
    .description('create a custom credential (built-in providers get theirs from `secrets create`); mtls binds cert, key and optional ca')
    .argument('<name>')
    .requiredOption('--provider <provider>', 'the custom provider it belongs to')
    .requiredOption('--secret-ref <ref>', 'PLACEHOLDER=vault:secret:ID, or a bare vault:secret:ID for {{secret}} (repeatable)', collect, [])
    .addOption(new Option('--auth <kind>', 'how the secret is injected').choices([...AUTH_KINDS]).makeOptionMandatory());
  strategyFlags(create)
    .option('--host <host>', 'allowed host[:port], or *.domain (repeatable)', collect)
    .option('--allow-http', 'owner decision: this credential talks plain http (credentials travel unencrypted)')
    .option('--allow-private-network', 'owner decision: allow loopback, private and link-local targets')
    .option('--any-tenant', 'owner decision: a wildcard --host (*.example.com) may reach every host under it, whoever runs it')
    .option('--json', 'print as JSON')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<CreateOptions>();
      const input = {
        name,
        provider: o.provider,
        auth: authFromFlags(o),
        secretRefs: parseSecretRefs(o.secretRef),
        hosts: o.host ?? [],
        allowHttp: o.allowHttp === true,
        allowPrivateNetwork: o.allowPrivateNetwork === true,
        ...(o.anyTenant ? { anyTenant: true } : {}),
      };
      const created = await ownerCall(o, 'credential.create', input);
      if (o.json) return printJson(created);
      printLine(`created credential ${created.name} (${created.auth}) for ${created.hosts.join(', ')}`);
      printWarnings(created.warnings);
    });

  const update = credential
    .command('update')
    .description('change a custom credential in place, checked as create checks it; flags not given keep their value, and its capabilities must stay within its hosts')
    .argument('<name>')
    .option('--secret-ref <ref>', 'PLACEHOLDER=vault:secret:ID, or a bare vault:secret:ID for {{secret}} (repeatable; replaces every binding)', collect)
    .addOption(new Option('--auth <kind>', 'a new strategy, given whole with its flags as at create').choices([...AUTH_KINDS]));
  strategyFlags(update)
    .option('--host <host>', 'allowed host[:port], or *.domain (repeatable; replaces the list)', collect)
    .option('--allow-http', 'owner decision: this credential talks plain http (credentials travel unencrypted)')
    .option('--no-allow-http', 'https only again')
    .option('--allow-private-network', 'owner decision: allow loopback, private and link-local targets')
    .option('--no-allow-private-network', 'public targets only again')
    .option('--any-tenant', 'owner decision: a wildcard --host this update adds may reach every host under it, whoever runs it')
    .option('--json', 'print as JSON')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<Partial<CreateOptions>>();
      const strategy = STRATEGY_FLAGS.filter((f) => o[f] !== undefined);
      if (!o.auth && strategy.length > 0) throw usage('a strategy is changed whole: give --auth with its flags, as at create');
      const change = {
        ...(o.auth ? { auth: authFromFlags(o as CreateOptions) } : {}),
        ...(o.secretRef ? { secretRefs: parseSecretRefs(o.secretRef) } : {}),
        ...(o.host ? { hosts: o.host } : {}),
        ...(o.allowHttp !== undefined ? { allowHttp: o.allowHttp } : {}),
        ...(o.allowPrivateNetwork !== undefined ? { allowPrivateNetwork: o.allowPrivateNetwork } : {}),
        ...(o.anyTenant ? { anyTenant: true } : {}),
      };
      if (Object.keys(change).length === 0) throw usage('give at least one thing to change (see --help)');
      const updated = await ownerCall(o as GlobalOptions, 'credential.update', { name, ...change });
      if (o.json) return printJson(updated);
      printLine(`updated credential ${updated.name} (${updated.auth}) for ${updated.hosts.join(', ')}${updated.allowHttp ? '; plain http allowed' : ''}${updated.allowPrivateNetwork ? '; private targets allowed' : ''}`);
      printWarnings(updated.warnings);
    });

  credential
    .command('list')
    .description('list credentials, built-in and custom')
    .option('--json', 'print as JSON')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const list = await ownerCall(o, 'credential.list', {});
      if (o.json) return printJson(list);
      printTable(['NAME', 'PROVIDER', 'SOURCE', 'AUTH', 'READY', 'HOSTS'], list.map((c) => [c.name, c.provider, c.source, c.auth, c.ready ? 'yes' : `no (missing ${c.missing.join(', ')})`, c.hosts.join(',')]));
    });

  credential
    .command('describe')
    .description('show one credential: strategy, hosts, which secrets it binds (never their values)')
    .argument('<name>')
    .option('--json', 'print as JSON')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const c = await ownerCall(o, 'credential.describe', { name });
      if (o.json) return printJson(c);
      printFields([
        ['name', c.name],
        ['provider', `${c.provider} (${c.source})`],
        ['auth', `${c.auth} ${JSON.stringify(c.config)}`],
        ['hosts', c.hosts.join(', ')],
        ['allow http', c.allowHttp ? 'yes' : 'no'],
        ['allow private', c.allowPrivateNetwork ? 'yes' : 'no'],
        ['bindings', Object.entries(c.bindings).map(([p, r]) => `{{${p}}} <- ${r}`).join('; ')],
        ['ready', c.ready ? 'yes' : `no (missing ${c.missing.join(', ')})`],
        ...endpointFields(c),
      ]);
    });

  credential
    .command('delete')
    .description('delete a custom credential (its capabilities must be deleted first)')
    .argument('<name>')
    .option('--json', 'print as JSON')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions>();
      const deleted = await ownerCall(o, 'credential.delete', { name });
      if (o.json) printJson(deleted);
      else printLine(`deleted credential ${name}`);
    });
}
