// `aivault invoke`, `aivault json`, `aivault markdown`: call a capability. `invoke` writes the
// upstream body to stdout (or {status, headers, body} with --json, or NDJSON frames with
// --stream); `json` and `markdown` shape the answer for an LLM's context. A denial is an
// error with its reason code and a non-zero exit. In process, or through the daemon when
// AIVAULT_AGENT_TOKEN and a daemon address are set.

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { InvokeRequest, PlannedRequest } from '../../broker/broker.ts';
import { AivaultError, OUTCOME_EXIT, upstreamExit } from '../../errors.ts';
import { withServices } from '../broker-context.ts';
import { collect, splitHeader, splitPair } from '../collect.ts';
import { messageWithFlags } from '../flags.ts';
import { agentClientFromEnv } from '../daemon-client.ts';
import { keepResponseHeader } from '../../policy/headers.ts';
import type { GlobalOptions } from '../context.ts';
import { readStdin } from '../input.ts';
import { readAll } from '../../read-capped.ts';
import { note, printDocument, printJson } from '../output.ts';
import type { Render } from '../../broker/render.ts';
import { scopeFromOptions } from '../../vault/scopes.ts';

interface InvokeOptions extends GlobalOptions {
  method: string;
  path?: string;
  url?: string;
  host?: string;
  query?: string[];
  header?: string[];
  body?: string;
  bodyFile?: string;
  bodyStdin?: boolean;
  multipartField?: string[];
  multipartFile?: string[];
  json?: boolean;
  stream?: boolean;
  workspaceId?: string;
  groupId?: string;
}

const MAX_CLI_BODY = 1024 * 1024 * 1024;

/**
 * A multipart/form-data body from --multipart-field k=v and --multipart-file field=path.
 * Files are read here, by the client: through the daemon they travel as bytes, and the
 * daemon never opens a path on an agent's behalf.
 */
async function multipartBody(o: InvokeOptions): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  for (const raw of o.multipartField ?? []) {
    const [name, value] = parsePairs([raw], splitPair, '--multipart-field')[0]!;
    form.append(name, value);
  }
  for (const raw of o.multipartFile ?? []) {
    const [name, path] = parsePairs([raw], splitPair, '--multipart-file')[0]!;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new AivaultError('INVALID_ARGUMENT', `cannot read --multipart-file ${name}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    form.append(name, new Blob([bytes]), basename(path));
  }
  // The Fetch API's own encoder: a fresh random boundary, and the content type that names it.
  const encoded = new Response(form);
  return { body: Buffer.from(await encoded.arrayBuffer()), contentType: encoded.headers.get('content-type')! };
}

async function readBody(o: InvokeOptions): Promise<Buffer | undefined> {
  const multipart = (o.multipartField?.length ?? 0) + (o.multipartFile?.length ?? 0) > 0;
  const sources = [o.body !== undefined, o.bodyFile !== undefined, o.bodyStdin === true, multipart].filter(Boolean).length;
  if (sources > 1) throw new AivaultError('INVALID_ARGUMENT', 'give the body one way: --body, --body-file, --body-stdin or --multipart-field/--multipart-file');
  if (o.body !== undefined) return Buffer.from(o.body, 'utf8');
  if (o.bodyFile !== undefined) {
    try {
      return await readFile(o.bodyFile);
    } catch (err) {
      throw new AivaultError('INVALID_ARGUMENT', `cannot read --body-file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (o.bodyStdin) return readStdin(MAX_CLI_BODY);
  return undefined;
}

function parsePairs(raw: readonly string[] | undefined, split: (s: string) => [string, string], what: string): Array<[string, string]> {
  return (raw ?? []).map((r) => {
    try {
      return split(r);
    } catch {
      throw new AivaultError('INVALID_ARGUMENT', `${what} must look like ${what === '--header' ? "'Name: value'" : 'name=value'}`);
    }
  });
}


/** The request options every invoking command shares. */
function addRequestOptions(cmd: Command): Command {
  return cmd
    .argument('<capability>', 'capability id, e.g. openai/chat-completions')
    .option('--method <method>', 'HTTP method', 'GET')
    .option('--path <path>', "request path (default: the capability's prefix, when it has exactly one)")
    .option('--host <host>', 'which host, when the capability allows several (e.g. a *.domain wildcard)')
    .option('--url <url>', 'absolute URL, instead of --host and --path')
    .option('--query <k=v>', 'query parameter (repeatable)', collect)
    .option('--header <header>', "request header 'Name: value' (repeatable; credential headers cannot be set)", collect)
    .option('--body <text>', 'request body')
    .option('--body-file <path>', 'request body from a file')
    .option('--body-stdin', 'request body from stdin')
    .option('--multipart-field <k=v>', 'a multipart/form-data text field (repeatable)', collect)
    .option('--multipart-file <field=path>', 'a multipart/form-data file, read by this command (repeatable)', collect)
    .option('--workspace-id <W>', "the owner's execution context: use this workspace's secrets (agents get the context the owner bound them to)")
    .option('--group-id <G>', 'the group of that workspace: its secrets, then the workspace\'s, then global ones attached to it');
}

async function buildRequest(capability: string, o: InvokeOptions): Promise<InvokeRequest> {
  let body = await readBody(o);
  let headers = parsePairs(o.header, splitHeader, '--header');
  if ((o.multipartField?.length ?? 0) + (o.multipartFile?.length ?? 0) > 0) {
    const multipart = await multipartBody(o);
    body = multipart.body;
    // The boundary is ours: a content type given with --header would not match the body.
    headers = [...headers.filter(([k]) => k.toLowerCase() !== 'content-type'), ['content-type', multipart.contentType]];
  }
  return {
    capability,
    method: o.method,
    ...(o.url !== undefined ? { url: o.url } : {}),
    ...(o.host !== undefined ? { host: o.host } : {}),
    ...(o.path !== undefined ? { path: o.path } : {}),
    query: parsePairs(o.query, splitPair, '--query'),
    headers,
    ...(body !== undefined ? { body } : {}),
  };
}

interface Answer {
  status: number;
  headers: ReadonlyArray<readonly [string, string]>;
  body: AsyncIterable<unknown>;
  planned: PlannedRequest;
  /** In process: the response's scrubber, for what is rendered from the body. */
  scrubText?: (text: string) => string;
}

/**
 * Runs the request in process or through the daemon, hands the answer to `use`, and cleans
 * up. With `render`, the daemon renders the answer itself (where the scrubber is) and the
 * body `use` gets is the rendering. `whole`: `use` reads the whole body before printing any
 * of it, so nothing need be released on a timer.
 */
async function withAnswer<T>(o: InvokeOptions, request: InvokeRequest, use: (answer: Answer) => Promise<T>, how: { render?: Render; whole?: boolean } = {}): Promise<T> {
  const { render, whole } = how;
  const scope = scopeFromOptions({ workspaceId: o.workspaceId, groupId: o.groupId });
  const client = await agentClientFromEnv(o);
  if (client) {
    // An agent cannot pick its own context: the owner bound it to one (aivault agent context).
    if (scope !== undefined) {
      await client.close();
      throw new AivaultError('INVALID_ARGUMENT', "an agent runs in the context its owner bound it to; --workspace-id and --group-id are for the owner's own invokes");
    }
    try {
      const { body, query, headers, ...rest } = request;
      const response = await client.invoke({ ...rest, query: [...(query ?? [])] as Array<[string, string]>, headers: [...(headers ?? [])] as Array<[string, string]>, ...(body ? { body: Buffer.from(body) } : {}), ...(render ? { render } : {}), ...(whole ? { whole } : {}) });
      const pairs: Array<[string, string]> = Object.entries(response.headers).flatMap(([k, v]) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x])));
      const header = (name: string) => pairs.find(([k]) => k === name)?.[1] ?? '';
      const planned = { capability: request.capability, credential: header('x-aivault-credential'), method: request.method.toUpperCase(), url: header('x-aivault-upstream-url') };
      return await use({ status: response.status, headers: pairs.filter(([k]) => keepResponseHeader(k)), body: response.body, planned });
    } finally {
      await client.close();
    }
  }
  return withServices(o, async ({ broker }) => {
    const response = await broker.invoke(request, { ...(scope ? { scope } : {}), ...(whole ? { whole } : {}) });
    const result = await use(response);
    await response.done;
    return result;
  });
}


/** The answer rendered for an LLM where the scrubber is (here, or in the daemon), and scrubbed again. */
async function renderedAnswer(o: InvokeOptions, request: InvokeRequest, render: Render): Promise<{ status: number; text: string }> {
  return withAnswer(o, request, async (answer) => {
    const body = await readAll(answer.body);
    const { renderAnswer } = await import('../../broker/render.ts');
    return { status: answer.status, text: answer.scrubText ? renderAnswer(render, answer, body, answer.scrubText) : body.toString('utf8') };
  }, { render, whole: true });
}

/** Prints a rendered answer; the exit status says how the upstream answered. */
function printRendered(rendered: { status: number; text: string }): void {
  printDocument(rendered.text);
  process.exitCode = upstreamExit(rendered.status);
}

const EXIT_RULE = `\nExit status: 0 when the upstream answered below 400, ${OUTCOME_EXIT.UPSTREAM_4XX.exit} for a 4xx answer, ${OUTCOME_EXIT.UPSTREAM_5XX.exit} for a 5xx
one (printed either way); a refusal by aivault exits with its code's exit status (aivault explain CODE).`;

/** NDJSON frames: head, then each body chunk (text, or base64 when not UTF-8), then end or error. */
async function streamFrames(answer: Answer): Promise<void> {
  const write = async (frame: object) => {
    if (!process.stdout.write(JSON.stringify(frame) + '\n')) await new Promise((r) => process.stdout.once('drain', r));
  };
  await write({ type: 'head', status: answer.status, headers: Object.fromEntries(groupHeaders(answer.headers)) });
  let bytes = 0;
  // A multi-byte character split across chunks is held back until it completes.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let binary = false;
  try {
    for await (const chunk of answer.body) {
      const buf = chunk as Buffer;
      bytes += buf.length;
      if (!binary) {
        try {
          const text = decoder.decode(buf, { stream: true });
          if (text) await write({ type: 'chunk', text });
          continue;
        } catch {
          binary = true;
        }
      }
      await write({ type: 'chunk', base64: buf.toString('base64') });
    }
  } catch (err) {
    const e = err instanceof AivaultError ? err : new AivaultError('UPSTREAM_ERROR', 'the response failed');
    await write({ type: 'error', code: e.code, message: messageWithFlags(e) });
    throw e;
  }
  await write({ type: 'end', bytes });
}

export function registerInvoke(program: Command): void {
  addRequestOptions(
    program
      .command('invoke')
      .description('invoke a capability: aivault checks the allow-lists, injects the credential, calls the upstream and returns its scrubbed response'),
  )
    .addHelpText('after', EXIT_RULE)
    .option('--json', 'print {status, headers, body} as JSON (body base64 when not UTF-8)')
    .option('--stream', 'print NDJSON frames as the response arrives: {type:"head",status,headers}, {type:"chunk",text|base64}…, {type:"end",bytes} or {type:"error",code,message}')
    .action(async (capability: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<InvokeOptions>();
      if (o.json && o.stream) throw new AivaultError('INVALID_ARGUMENT', 'give --json or --stream, not both');
      const request = await buildRequest(capability, o);
      // --json prints nothing before the end, so it reads the answer whole; the others stream.
      const status = await withAnswer(o, request, async (answer) => {
        await (o.stream ? streamFrames(answer) : output(o, answer.status, answer.headers, answer.body));
        return answer.status;
      }, { whole: o.json === true });
      process.exitCode = upstreamExit(status);
    });

  addRequestOptions(
    program
      .command('json')
      .description('invoke a capability and print {planned: {capability, credential, method, url}, response: {status, json}}: the URL with secrets redacted, the body parsed'),
  )
    .addHelpText('after', EXIT_RULE)
    .action(async (capability: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<InvokeOptions>();
      printRendered(await renderedAnswer(o, await buildRequest(capability, o), { as: 'json' }));
    });

  addRequestOptions(
    program
      .command('markdown')
      .description('invoke a capability and render its JSON answer as compact markdown (tables for arrays of objects) for an LLM context'),
  )
    .option('--namespace <ns>', 'fence the output between begin and end marker lines named NS')
    .option('--exclude-field <field>', 'leave out this field (a key name anywhere, or a dotted path from the top) (repeatable)', collect)
    .option('--wrap-field <field>', "render this field's values as fenced blocks marked as data, not instructions (repeatable)", collect)
    .addHelpText('after', EXIT_RULE)
    .action(async (capability: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<InvokeOptions & { namespace?: string; excludeField?: string[]; wrapField?: string[] }>();
      const render: Render = { as: 'markdown', exclude: o.excludeField ?? [], wrap: o.wrapField ?? [], ...(o.namespace !== undefined ? { namespace: o.namespace } : {}) };
      printRendered(await renderedAnswer(o, await buildRequest(capability, o), render));
    });
}

/** Writes the upstream answer: the raw body, or {status, headers, body} with --json. */
async function output(o: InvokeOptions, status: number, headers: ReadonlyArray<readonly [string, string]>, body: AsyncIterable<unknown>): Promise<void> {
  if (o.json) {
    const { bodyForJson } = await import('../../broker/render.ts');
    printJson({ status, headers: Object.fromEntries(groupHeaders(headers)), ...bodyForJson(await readAll(body)) });
    return;
  }
  if (status >= 400) note(`upstream answered HTTP ${status}`);
  for await (const chunk of body) {
    if (!process.stdout.write(chunk as Buffer)) await new Promise((r) => process.stdout.once('drain', r));
  }
}

function groupHeaders(headers: ReadonlyArray<readonly [string, string]>): Map<string, string | string[]> {
  const out = new Map<string, string | string[]>();
  for (const [k, v] of headers) {
    const prev = out.get(k);
    out.set(k, prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]);
  }
  return out;
}
