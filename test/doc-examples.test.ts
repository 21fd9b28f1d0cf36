// Every command example a person can read runs, so none can drift from the CLI: the ```sh
// blocks of the README and docs/ (each file in order, as one reader following it, in a vault
// of its own) and every command's --help Examples (each command's in a fresh copy of one
// prepared vault). They run as written, in bash, against the real CLI in this process, with
// a loopback stand-in for every upstream; names resolve to nothing else, so no example
// reaches the network. Opt-outs (blocks marked `<!-- examples: skip (why) -->`) are counted
// and reported. See test/helpers/doc-examples.ts and test/helpers/shell-bridge.ts.

import assert from 'node:assert/strict';
import dns from 'node:dns';
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EXAMPLES } from '../src/cli/examples.ts';
import { shellBlocks, type Example } from './helpers/doc-examples.ts';
import { ShellBridge, type Failure } from './helpers/shell-bridge.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** What a person would have typed at a prompt, and the values examples take from variables. */
const TYPED = 'sk-example-0123456789abcdef';
const VARIABLES = {
  KEY: TYPED,
  NEW_KEY: 'sk-example-rotated-0123456789',
  CANDIDATE: TYPED,
  NONCE: 'nonce-0123456789',
  REFRESH_TOKEN: 'rt-example-0123456789',
  SPOTIFY_CLIENT_ID: 'example-client',
  AIVAULT_PASSPHRASE: 'correct horse battery staple',
};

/** Built-in providers whose traffic goes to the stand-in (`aivault endpoint set`, as a person testing would). */
const STAND_IN_PROVIDERS: Record<string, string[]> = {
  openai: ['api.openai.com'],
  anthropic: ['api.anthropic.com'],
  github: ['api.github.com'],
  stripe: ['api.stripe.com'],
  slack: ['slack.com'],
  spotify: ['api.spotify.com'],
};

/** Files the examples name, in the directory they run in. */
const FILES: Record<string, string> = {
  'request.json': '{"model":"gpt-4o-mini","messages":[]}',
  'stream-request.json': '{"model":"gpt-4o-mini","messages":[],"stream":true}',
  'user.json': '{"name":"Ada"}',
  'exchange.json': '{"code":"example"}',
  'train.jsonl': '{"prompt":"a","completion":"b"}\n',
  'token.txt': 'team-token-0123456789\n',
  'client-secret.txt': 'client-secret-0123456789\n',
  '.env': 'IMPORTED_TOKEN=imported-0123456789\n',
  'prod.env': 'PROD_TOKEN=prod-0123456789\n',
  'my_tool.py': 'print("my_tool ran")\n',
  'agent.js': 'console.log("agent ran");\n',
};

/**
 * The rewrites between what is written and what runs, each mechanical: the daemon's port
 * becomes a free one; `aivault serve … &` runs in the foreground (the bridge answers once it
 * listens and keeps it serving, so the next line never races its start-up); and a vault
 * made with the default passphrase is made with a key file instead (argon2id would cost
 * ~0.3 s on every command that opens it; the passphrase provider has tests of its own).
 */
function runnable(e: Example, port: number): Example {
  const text = e.text
    .replace(/127\.0\.0\.1:8787/g, `127.0.0.1:${port}`)
    .replace(/^aivault init(?![^#]*--key-provider)/, 'aivault init --key-provider keyfile')
    .replace(/^(aivault serve\b[^#&]*?)\s*&(\s*#.*)?$/, '$1$2');
  return { ...e, text };
}

/**
 * Failures that are the missing network, not the example: a host with no stand-in resolves
 * to nothing here, so the command got as far as connecting (every check before it passed).
 */
function reachedNetwork(f: Failure): boolean {
  return f.call?.exit === 8 && /UPSTREAM_UNREACHABLE/.test(f.call.stderr);
}

/** A placeholder left unfilled (`apr_3kq…`) names nothing: refused as not found, after parsing. */
function namedNothing(f: Failure): boolean {
  return f.text.includes('…') && /[A-Z]+_NOT_FOUND/.test(f.call?.stderr ?? '');
}

/**
 * What the --help examples refer to without creating it, made once and copied for each
 * command. The commands that make what it holds (a first secret, a first agent) start from
 * the bare vault instead.
 */
const HELP_FIXTURE = [
  'aivault secrets create --name NOTES_API_KEY --value-stdin > secret-ref.txt',
  ...['OPENAI_API_KEY', 'GITHUB_TOKEN', 'STRIPE_SECRET_KEY', 'SLACK_BOT_TOKEN', 'OLD_TOKEN', 'MY_TOKEN'].map((n) => `aivault secrets create --name ${n} --value-stdin >/dev/null`),
  'aivault agent create my-bot --json > my-bot.json',
  'aivault grant my-bot openai/chat-completions',
  'aivault grant my-bot openai/models',
];
const FROM_BARE = new Set(['secrets', 'secrets create', 'agent', 'agent create']);

/**
 * Examples another command's examples presuppose (a credential before its capability, a
 * daemon before an agent's call), run first as setup. Each is itself an example, so this
 * cannot drift either.
 */
const REQUIRES: Record<string, string[]> = {
  'secrets rollback': ['printf %s "$NEW_KEY" | aivault secrets rotate OPENAI_API_KEY --value-stdin'],
  'secrets detach-group': ['aivault secrets attach-group OPENAI_API_KEY --workspace-id acme --group-id ml'],
  'credential delete': ['aivault credential create notes --provider notes --secret-ref vault:secret:… --auth header --header-name authorization --value-template "Bearer {{secret}}" --host api.notes.example'],
  'capability create': ['aivault credential create notes --provider notes --secret-ref vault:secret:… --auth header --header-name authorization --value-template "Bearer {{secret}}" --host api.notes.example'],
  'capability delete': [
    'aivault credential create notes --provider notes --secret-ref vault:secret:… --auth header --header-name authorization --value-template "Bearer {{secret}}" --host api.notes.example',
    'aivault capability create notes/read --provider notes --credential notes --method GET --path /v1/notes',
  ],
  'credential update': ['aivault credential create notes --provider notes --secret-ref vault:secret:… --auth header --header-name authorization --value-template "Bearer {{secret}}" --host api.notes.example'],
  'capability update': [
    'aivault credential create notes --provider notes --secret-ref vault:secret:… --auth header --header-name authorization --value-template "Bearer {{secret}}" --host api.notes.example',
    'aivault capability create notes/read --provider notes --credential notes --method GET --path /v1/notes',
    'aivault capability create notes/write --provider notes --credential notes --method POST --method PATCH --path /v1/notes --max-request-bytes 65536',
  ],
  'revoke-grant': ['aivault grant my-bot github/* --methods GET --expires 7d --rate 60/min'],
  'capability policy clear': ['aivault capability policy set github/issues --response-block "acme-internal-" --response-block "ops@acme.example"'],
  flow: ['aivault flow create github/exchange --mode acquire_secret --target https://github.com/login/oauth/access_token --kind oauth_token_response.access_token --store-alias GITHUB_TOKEN'],
  'flow create': ['aivault credential create notes --provider notes --secret-ref vault:secret:… --auth header --header-name authorization --value-template "Bearer {{secret}}" --host api.notes.example'],
  'flow describe': ['aivault flow create github/exchange --mode acquire_secret --target https://github.com/login/oauth/access_token --kind oauth_token_response.access_token --store-alias GITHUB_TOKEN'],
  'flow delete': ['aivault flow create github/exchange --mode acquire_secret --target https://github.com/login/oauth/access_token --kind oauth_token_response.access_token --store-alias GITHUB_TOKEN'],
  'flow run': ['aivault flow create github/exchange --mode acquire_secret --target https://github.com/login/oauth/access_token --kind oauth_token_response.access_token --store-alias GITHUB_TOKEN'],
  invoke: ['aivault secrets attach-group OPENAI_API_KEY --workspace-id acme --group-id ml', 'aivault serve'],
  mcp: ['aivault serve'],
  run: ['aivault serve --listen 127.0.0.1:8787 --audit-durability crash-safe'],
  'owner remove': ['aivault owner add laptop --public-key laptop.pub'],
  'audit verify': ['aivault audit head > head.json'],
};

/**
 * Placeholders in --help examples (`…` stands for what the reader has) and what fills them
 * here; an example that still names something that cannot exist here (an approval id) must
 * be refused as not found, having parsed and run.
 */
const PLACEHOLDERS: Array<[RegExp, string]> = [
  [/vault:secret:(3f9c)?…/g, '"$SECRET_REF"'],
  [/--id 3f9c…/g, '--id "${SECRET_REF#vault:secret:}"'],
  [/avt_…/g, '"$(jq -r .token ~/my-bot.json)"'],
  [/AIVAULT_NEW_PASSPHRASE=…/g, 'AIVAULT_NEW_PASSPHRASE="$AIVAULT_PASSPHRASE"'],
];

/** Examples that are alternatives to each other (each makes or re-keys a vault): each runs in a fresh copy. */
const ALTERNATIVES = new Set(['init', 'rotate-master', 'secrets attach-group', 'secrets delete']);

/** Help examples that cannot run here, and why: they are counted as opt-outs. */
function helpOptOut(text: string): string | undefined {
  if (/^sudo /.test(text)) return 'needs root';
  if (text.includes('${fpath')) return 'zsh syntax';
  if (text.includes('--socket-group')) return 'needs the OS group it names';
  return undefined;
}

function report(failures: readonly Failure[]): string {
  return failures
    .map((f) => `${f.where}: exit ${f.status}\n  ${f.text.replace(/\n/g, '\n  ')}${f.call ? `\n  aivault ${f.call.args.join(' ')} -> ${f.call.exit}: ${f.call.stderr.trim().slice(0, 400)}` : ''}`)
    .join('\n');
}

function freePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    }),
  );
}

describe('command examples in the README, docs/ and --help', () => {
  let tmp: string;
  let bridge: ShellBridge;
  let upstream: Server;
  let standIn: string;
  const originalLookup = dns.lookup;
  const skipped: string[] = [];
  let ran = 0;
  let offline = 0;
  let port = 0;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'aivault-doc-examples-'));
    // Nothing resolves but localhost: an example that names a real host cannot reach it.
    dns.lookup = ((hostname: string, options: unknown, callback: unknown) => {
      const cb = (typeof options === 'function' ? options : callback) as (err: Error | null, a: unknown, f?: number) => void;
      if (hostname === 'localhost' || isIP(hostname) !== 0) return originalLookup(hostname, options as dns.LookupAllOptions, cb as never);
      const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
      process.nextTick(() => cb(err, []));
    }) as typeof dns.lookup;
    syncBuiltinESMExports();
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(req.url?.includes('token') ? { access_token: 'at-example-0123456789', token_type: 'Bearer', expires_in: 3600 } : { ok: true, data: [{ id: 1, name: 'example' }] }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    standIn = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    bridge = await ShellBridge.start(TYPED);
    port = await freePort();
  });

  after(async () => {
    await bridge?.close();
    upstream?.close();
    dns.lookup = originalLookup;
    syncBuiltinESMExports();
    rmSync(tmp, { recursive: true, force: true });
    const optOuts = skipped.length ? `:\n#   ${skipped.join('\n#   ')}` : '';
    process.stdout.write(`# command examples: ${ran} run in all (${offline} up to the network only: a host with no stand-in), ${skipped.length} opted out${optOuts}\n`);
  });

  /** A home and a working directory of their own, with the files examples name. */
  function place(name: string): { home: string; work: string; calls: string; env: NodeJS.ProcessEnv } {
    const [home, work, calls] = ['home', 'work', 'calls'].map((d) => join(tmp, name, d)) as [string, string, string];
    for (const d of [home, work, calls, join(home, '.config/fish/completions')]) mkdirSync(d, { recursive: true });
    for (const [file, text] of Object.entries(FILES)) writeFileSync(join(work, file), text);
    for (const name of ['bot.pub', 'signer.pub', 'laptop.pub']) writeFileSync(join(work, name), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    mkdirSync(join(work, 'registry'));
    writeFileSync(join(work, 'my-provider.json'), readFileSync(join(ROOT, 'registry/openai.json')));
    writeFileSync(join(work, 'registry/my-provider.json'), readFileSync(join(ROOT, 'registry/openai.json')));
    return { home, work, calls, env: { PATH: process.env.PATH, HOME: home, ...VARIABLES } };
  }

  function standIns(): Example[] {
    return Object.entries(STAND_IN_PROVIDERS).map(([provider, hosts]) => ({
      where: 'stand-in',
      text: `aivault endpoint set ${provider} ${hosts.map((h) => `--map ${h}=${standIn}`).join(' ')} --allow-http --allow-private-network >/dev/null`,
    }));
  }

  for (const doc of DOCS) {
    it(`${doc}: every shell block runs`, async () => {
      const blocks = shellBlocks(join(ROOT, doc), doc);
      for (const b of blocks) if (b.skipped) skipped.push(`${b.where}: ${b.skipped}`);
      const examples = blocks.filter((b) => !b.skipped).flatMap((b) => b.examples);
      if (examples.length === 0) return;
      // A document that shows `aivault init` starts from nothing; any other from a fresh vault.
      const init = examples.findIndex((e) => /^aivault init\b/.test(e.text));
      const lines = init === -1 ? [{ where: 'fixture', text: 'aivault init --key-provider keyfile --no-guide 2>/dev/null' }, ...standIns(), ...examples] : [...examples.slice(0, init + 1), ...standIns(), ...examples.slice(init + 1)];
      const at = place(doc.replace(/\W/g, '-'));
      const all = await bridge.script(lines.map((e) => runnable(e, port)), { cwd: at.work, env: at.env, tmp: at.calls });
      const failures = all.filter((f) => !reachedNetwork(f));
      offline += all.length - failures.length;
      ran += examples.length;
      assert.equal(failures.length, 0, `${failures.length} of ${examples.length} examples failed:\n${report(failures)}`);
    });
  }

  it('every --help example runs', async () => {
    const bare = place('help-bare');
    const made = [{ where: 'fixture', text: 'aivault init --key-provider keyfile --no-guide 2>/dev/null' }, ...standIns()];
    assert.deepEqual(await bridge.script(made, { cwd: bare.home, env: bare.env, tmp: bare.calls }), [], 'the bare vault');
    const fixture = place('help-fixture');
    cpSync(bare.home, fixture.home, { recursive: true });
    const more = HELP_FIXTURE.map((text) => ({ where: 'fixture', text }));
    assert.deepEqual(await bridge.script(more, { cwd: fixture.home, env: fixture.env, tmp: fixture.calls }), [], 'the fixture');
    const secretRef = readFileSync(join(fixture.home, 'secret-ref.txt'), 'utf8').trim();
    const known = new Set(Object.values(EXAMPLES).flat());
    const fill = (where: string, text: string) => runnable({ where, text: PLACEHOLDERS.reduce((t, [pattern, value]) => t.replace(pattern, value), text) }, port);
    const failures: Failure[] = [];
    let count = 0;
    let placeholders = 0;
    let n = 0;
    for (const [path, examples] of Object.entries(EXAMPLES)) {
      const runs: Example[][] = [];
      const lines: Example[] = [];
      for (const [i, text] of examples.entries()) {
        const why = helpOptOut(text);
        if (why) {
          skipped.push(`aivault ${path} --help: ${text} (${why})`);
          continue;
        }
        const example = fill(`aivault ${path} --help, example ${i + 1}`, text);
        if (ALTERNATIVES.has(path)) runs.push([example]);
        else lines.push(example);
      }
      if (lines.length) runs.push(lines);
      const setup = (REQUIRES[path] ?? []).map((text) => {
        assert.ok(known.has(text), `REQUIRES of ${path}: "${text}" is not a --help example`);
        return fill(`setup for aivault ${path}`, text);
      });
      for (const run of runs) {
        const at = join(tmp, `help-${n++}`);
        mkdirSync(join(at, 'calls'), { recursive: true });
        const home = join(at, 'home');
        if (path === 'init') mkdirSync(home);
        else cpSync(FROM_BARE.has(path) ? bare.home : fixture.home, home, { recursive: true });
        cpSync(fixture.work, join(at, 'work'), { recursive: true });
        const all = await bridge.script([...setup, ...run], { cwd: join(at, 'work'), env: { ...fixture.env, HOME: home, SECRET_REF: secretRef }, tmp: join(at, 'calls') });
        const left = all.filter((f) => !reachedNetwork(f) && !namedNothing(f));
        offline += all.filter(reachedNetwork).length;
        placeholders += all.filter((f) => !reachedNetwork(f) && namedNothing(f)).length;
        failures.push(...left);
        count += run.length;
      }
    }
    ran += count;
    process.stdout.write(`# help examples: ${count} run, ${placeholders} with a placeholder that names nothing here (refused as not found)\n`);
    assert.equal(failures.length, 0, `${failures.length} of ${count} --help examples failed:\n${report(failures)}`);
  });
});
