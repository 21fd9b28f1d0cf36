// Issue 20: a name that resolves to a metadata address hidden in an IPv6 translation form, or
// to an address no upstream lives at, is refused even with --allow-private-network. Resolved
// for real (getaddrinfo reading a hosts file) inside a private mount and network namespace
// (`unshare -rmn`), so nothing on this machine changes and nothing can be reached.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CLI, tempVault, type TempVault } from '../helpers/cli.ts';

const NAMES: Record<string, string> = {
  'nat64.meta.test': '64:ff9b::a9fe:a9fe',
  'nat64-local.meta.test': '64:ff9b:1::a9fe:a9fe',
  'nat64-local48.meta.test': '64:ff9b:1:a9fe:a9:fe00:808:808',
  'isatap.meta.test': '2600::200:5efe:a9fe:a9fe',
  '6to4.meta.test': '2002:a9fe:a9fe::1',
  'teredo.meta.test': '2001:0:4136:e378:8000:63bf:5601:5601',
  'compat.meta.test': '::a9fe:a9fe',
  'mapped.meta.test': '::ffff:169.254.169.254',
  'translated.meta.test': '::ffff:0:a9fe:a9fe',
  'alibaba-nat64.meta.test': '64:ff9b::6464:64c8',
  'broadcast.never.test': '255.255.255.255',
  'multicast.never.test': '224.0.0.1',
  'multicast6.never.test': 'ff02::1',
  'zero.never.test': '0.0.0.0',
  'nat64-zero.never.test': '64:ff9b::',
  'rfc1918.private.test': '10.1.2.3',
};

const probe = `
import { checkedLookup } from ${JSON.stringify(fileURLToPath(new URL('../../src/policy/dns.ts', import.meta.url)))};
const names = ${JSON.stringify(Object.keys(NAMES))};
const lookup = checkedLookup({ allowPrivateNetwork: true, port: 443 });
const out = {};
for (const name of names) {
  out[name] = await new Promise((resolve) => lookup(name, { all: true }, (err, addresses) => resolve(err ? (err.code ?? 'ERROR') : addresses.map((a) => a.address))));
}
console.log(JSON.stringify(out));
`;

/** Runs `args` with the hosts file in place of /etc/hosts, in namespaces of its own; undefined when that cannot be done here. */
function inNamespace(hosts: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } | undefined {
  const r = spawnSync('unshare', ['-rmn', 'sh', '-c', `mount --bind "$0" /etc/hosts && exec "$@"`, hosts, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 60_000 });
  if (r.error || /unshare|mount/.test(r.stderr) && r.status !== 0 && !r.stdout) return undefined;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('embedded metadata and unroutable addresses, resolved for real', () => {
  let dir: string;
  let hosts: string;
  let v: TempVault;
  let usable = false;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aivault-hosts-'));
    hosts = join(dir, 'hosts');
    writeFileSync(hosts, `127.0.0.1 localhost\n${Object.entries(NAMES).map(([n, a]) => `${a} ${n}`).join('\n')}\n`);
    usable = inNamespace(hosts, ['true']) !== undefined && inNamespace(hosts, ['true'])!.code === 0;
    v = await tempVault();
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    v.cleanup();
  });

  it('the checked lookup refuses every embedded metadata and unroutable form, with the opt-in', (t) => {
    if (!usable) return t.skip('unshare -rmn is not permitted here (needs user namespaces or root)');
    const script = join(dir, 'probe.ts');
    writeFileSync(script, probe);
    const r = inNamespace(hosts, [process.execPath, script])!;
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Record<string, string | string[]>;
    for (const name of Object.keys(NAMES)) {
      if (name.endsWith('.private.test')) assert.deepEqual(got[name], [NAMES[name]], `${name}: the opt-in allows a private address`);
      else assert.equal(got[name], 'PRIVATE_ADDRESS_BLOCKED', name);
    }
  });

  it('an invoke to such a name is refused with a policy code (exit 7) before any connection', async (t) => {
    if (!usable) return t.skip('unshare -rmn is not permitted here (needs user namespaces or root)');
    const ref = (await v.cli(['secrets', 'create', '--name', 'META_KEY', '--value', 'meta-key-0123456789'])).stdout.trim();
    const hostsArgs = ['nat64.meta.test', '6to4.meta.test', 'teredo.meta.test', 'broadcast.never.test'].flatMap((h) => ['--host', h]);
    const made = await v.cli(['credential', 'create', 'meta', '--provider', 'meta', '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', ...hostsArgs, '--allow-http', '--allow-private-network']);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await v.cli(['capability', 'create', 'meta/api', '--provider', 'meta', '--credential', 'meta', '--method', 'GET', '--path', '/v1'])).code, 0);
    for (const host of ['nat64.meta.test', '6to4.meta.test', 'teredo.meta.test', 'broadcast.never.test']) {
      const r = inNamespace(hosts, [process.execPath, CLI, 'invoke', 'meta/api', '--host', host, '--path', '/v1/x'], v.env)!;
      assert.equal(r.code, 7, `${host}: ${r.stderr}`);
      assert.match(r.stderr, /PRIVATE_ADDRESS_BLOCKED/, host);
    }
  });
});
