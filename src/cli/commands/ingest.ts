// `aivault secrets ingest NAME`: receive one secret value over a one-shot loopback
// endpoint (random path, one-time token, size cap, 127.0.0.1 only), so another local
// program or a browser form can hand a key over without it touching the terminal.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { AivaultError } from '../../errors.ts';
import { readCapped } from '../../read-capped.ts';
import { assertSecretName } from '../../vault/names.ts';
import { MAX_SECRET_BYTES } from '../../vault/vault.ts';
import { withVault, type GlobalOptions } from '../context.ts';
import { note, printLine } from '../output.ts';

const FORM = (action: string, token: string) => `<!doctype html><meta charset="utf-8"><title>aivault</title>
<form method="post" action="${action}"><input type="hidden" name="token" value="${token}">
<label>Secret value <input type="password" name="value" autofocus></label> <button>Store</button></form>`;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function registerIngest(secrets: Command): void {
  secrets
    .command('ingest')
    .argument('<name>', 'the secret to create (or rotate, if it exists)')
    .option('--timeout <seconds>', 'give up after this long', '600')
    .option('--json', 'print {url, token} as JSON, then the stored secret')
    .description('receive one value on a one-shot 127.0.0.1 endpoint (POST it with the token, or open the URL in a browser)')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { timeout: string }>();
      assertSecretName(name);
      const path = `/ingest/${randomBytes(16).toString('base64url')}`;
      const token = randomBytes(24).toString('base64url');
      let value: Buffer | undefined;
      const server = createServer(async (req, res) => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        res.setHeader('cache-control', 'no-store');
        if (url.pathname !== path || value !== undefined) {
          res.statusCode = 404;
          return void res.end();
        }
        if (req.method === 'GET' && same(url.searchParams.get('t') ?? '', token)) {
          res.setHeader('content-type', 'text/html; charset=utf-8');
          res.setHeader('content-security-policy', "default-src 'none'; form-action 'self'");
          return void res.end(FORM(path, token));
        }
        if (req.method !== 'POST') {
          res.statusCode = 404;
          return void res.end();
        }
        const body = await readCapped(req, MAX_SECRET_BYTES + 4096);
        if (!body) {
          res.statusCode = 413;
          return void res.end('too large\n');
        }
        let candidate: Buffer | undefined;
        if (String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
          const form = new URLSearchParams(body.toString('utf8'));
          if (same(form.get('token') ?? '', token)) candidate = Buffer.from(form.get('value') ?? '', 'utf8');
        } else if (same(String(req.headers['x-ingest-token'] ?? ''), token)) {
          candidate = body;
        }
        if (!candidate || candidate.length === 0) {
          res.statusCode = 404;
          return void res.end();
        }
        value = candidate;
        res.setHeader('content-type', 'text/plain');
        res.end('received; you can close this page\n');
        server.close();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
      // One JSON object per line: a caller reads the first line, then posts.
      if (o.json) printLine(JSON.stringify({ url, token }));
      else {
        printLine(`POST the value to ${url} with header x-ingest-token: ${token}`);
        note(`or open ${url}?t=${token} in a browser on this machine; waiting up to ${o.timeout} s`);
      }
      const received = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          server.close();
          resolve(false);
        }, Number(o.timeout) * 1000);
        server.on('close', () => {
          clearTimeout(timer);
          resolve(value !== undefined);
        });
      });
      if (!received || !value) throw new AivaultError('INVALID_ARGUMENT', 'no value arrived before the timeout; nothing stored');
      const v = value;
      try {
        const info = await withVault(o, async (vault) => {
          const existing = await vault.storage.listSecrets({ name, scope: 'global' });
          return existing.length > 0 ? vault.rotateSecret(existing[0]!.id, v) : vault.createSecret({ name, value: v });
        });
        if (o.json) printLine(JSON.stringify({ name: info.name, ref: info.ref, version: info.currentVersion }));
        else printLine(`stored ${info.name} (${info.ref}, version ${info.currentVersion})`);
      } finally {
        v.fill(0);
      }
    });
}
