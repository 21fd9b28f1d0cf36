// `aivault invoke`: call a capability. The upstream body goes to stdout (or, with --json,
// {status, headers, body}); a denial is an error with its reason code and a non-zero exit.

import { readFile } from 'node:fs/promises';
import { TextDecoder } from 'node:util';
import type { Command } from 'commander';
import type { InvokeRequest } from '../../broker/broker.ts';
import { AivaultError } from '../../errors.ts';
import { withBroker } from '../broker-context.ts';
import { collect, splitHeader, splitPair } from '../collect.ts';
import { agentClientFromEnv } from '../daemon-client.ts';
import { keepResponseHeader } from '../../policy/headers.ts';
import type { GlobalOptions } from '../context.ts';
import { readStdin } from '../input.ts';
import { note, printJson } from '../output.ts';

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
}

const MAX_CLI_BODY = 1024 * 1024 * 1024;

async function readBody(o: InvokeOptions): Promise<Buffer | undefined> {
  const sources = [o.body !== undefined, o.bodyFile !== undefined, o.bodyStdin === true].filter(Boolean).length;
  if (sources > 1) throw new AivaultError('INVALID_ARGUMENT', 'give the body one way: --body, --body-file or --body-stdin');
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

function bodyForJson(bytes: Buffer): { body: string; bodyEncoding: 'utf8' | 'base64' } {
  try {
    return { body: new TextDecoder('utf-8', { fatal: true }).decode(bytes), bodyEncoding: 'utf8' };
  } catch {
    return { body: bytes.toString('base64'), bodyEncoding: 'base64' };
  }
}

export function registerInvoke(program: Command): void {
  program
    .command('invoke')
    .description('invoke a capability: aivault checks the allow-lists, injects the credential, calls the upstream and returns its scrubbed response')
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
    .option('--json', 'print {status, headers, body} as JSON (body base64 when not UTF-8)')
    .action(async (capability: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<InvokeOptions>();
      const body = await readBody(o);
      const request: InvokeRequest = {
        capability,
        method: o.method,
        ...(o.url !== undefined ? { url: o.url } : {}),
        ...(o.host !== undefined ? { host: o.host } : {}),
        ...(o.path !== undefined ? { path: o.path } : {}),
        query: parsePairs(o.query, splitPair, '--query'),
        headers: parsePairs(o.header, splitHeader, '--header'),
        ...(body !== undefined ? { body } : {}),
      };
      const client = agentClientFromEnv();
      if (client) {
        try {
          const response = await client.invoke({ ...request, query: [...(request.query ?? [])] as Array<[string, string]>, headers: [...(request.headers ?? [])] as Array<[string, string]>, ...(body ? { body } : {}) });
          const headers: Array<[string, string]> = Object.entries(response.headers).flatMap(([k, v]) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x])));
          await output(o, response.status, headers.filter(([k]) => keepResponseHeader(k)), response.body);
        } finally {
          await client.close();
        }
        return;
      }
      await withBroker(o, async (broker) => {
        const response = await broker.invoke(request);
        await output(o, response.status, response.headers, response.body);
        await response.done;
      });
    });
}

/** Writes the upstream answer: the raw body, or {status, headers, body} with --json. */
async function output(o: InvokeOptions, status: number, headers: ReadonlyArray<readonly [string, string]>, body: AsyncIterable<unknown>): Promise<void> {
  if (o.json) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    printJson({ status, headers: Object.fromEntries(groupHeaders(headers)), ...bodyForJson(Buffer.concat(chunks)) });
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
