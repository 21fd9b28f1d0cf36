import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RegistryProvider } from '../../src/registry/types.ts';
import { validateProviderSet, validateProviderText } from '../../src/registry/validate.ts';
import { runCli } from '../helpers/cli.ts';

function base(): RegistryProvider {
  return {
    provider: 'acme',
    vaultSecrets: { ACME_API_KEY: 'secret' },
    auth: { header: { header_name: 'authorization', value_template: 'Bearer {{secret}}' } },
    hosts: ['api.acme.com', '*.acme.io'],
    capabilities: [{ id: 'acme/users', provider: 'acme', allow: { hosts: ['api.acme.com'], methods: ['GET'], pathPrefixes: ['/v1/users'] } }],
  };
}

type Doc = Record<string, any>;
const cases: Array<{ name: string; mutate: (d: Doc) => void; pointer: string; message?: RegExp }> = [
  { name: 'unknown top-level key', mutate: (d) => (d.extra = true), pointer: '/extra', message: /unknown key/ },
  { name: 'unknown capability key', mutate: (d) => (d.capabilities[0].allow.query = ['x']), pointer: '/capabilities/0/allow/query' },
  { name: 'unknown auth key', mutate: (d) => (d.auth.header.prefix = 'x'), pointer: '/auth/header/prefix' },
  { name: 'capability provider differs', mutate: (d) => (d.capabilities[0].provider = 'other'), pointer: '/capabilities/0/provider' },
  { name: 'allow.hosts outside hosts', mutate: (d) => d.capabilities[0].allow.hosts.push('evil.example.com'), pointer: '/capabilities/0/allow/hosts/1' },
  { name: 'allow.hosts two labels under a wildcard', mutate: (d) => (d.capabilities[0].allow.hosts = ['a.b.acme.io']), pointer: '/capabilities/0/allow/hosts/0' },
  { name: 'placeholder no vaultSecret provides', mutate: (d) => (d.auth.header.value_template = 'Bearer {{token}}'), pointer: '/auth/header/value_template', message: /\{\{token\}\}/ },
  { name: 'malformed placeholder', mutate: (d) => (d.auth.header.value_template = 'Bearer {{Secret}}'), pointer: '/auth/header/value_template' },
  { name: 'id not provider/name', mutate: (d) => (d.capabilities[0].id = 'users'), pointer: '/capabilities/0/id' },
  { name: 'id with another provider', mutate: (d) => (d.capabilities[0].id = 'other/users'), pointer: '/capabilities/0/id' },
  { name: 'path prefix without leading slash', mutate: (d) => (d.capabilities[0].allow.pathPrefixes = ['v1/users']), pointer: '/capabilities/0/allow/pathPrefixes/0' },
  { name: 'bare "/" prefix', mutate: (d) => (d.capabilities[0].allow.pathPrefixes = ['/']), pointer: '/capabilities/0/allow/pathPrefixes/0' },
  { name: 'dot segment prefix', mutate: (d) => (d.capabilities[0].allow.pathPrefixes = ['/v1/../admin']), pointer: '/capabilities/0/allow/pathPrefixes/0' },
  { name: 'percent-encoded prefix', mutate: (d) => (d.capabilities[0].allow.pathPrefixes = ['/v1%2fadmin']), pointer: '/capabilities/0/allow/pathPrefixes/0' },
  { name: 'unknown method', mutate: (d) => (d.capabilities[0].allow.methods = ['TRACE']), pointer: '/capabilities/0/allow/methods/0' },
  { name: 'wildcard in the middle of a host', mutate: (d) => (d.hosts = ['api.*.acme.com']), pointer: '/hosts/0' },
  { name: 'upper-case host', mutate: (d) => (d.hosts = ['API.acme.com']), pointer: '/hosts/0' },
  { name: 'CRLF in a template', mutate: (d) => (d.auth.header.value_template = 'Bearer {{secret}}\r\nX-Evil: 1'), pointer: '/auth/header/value_template' },
  { name: 'two auth strategies', mutate: (d) => (d.auth.query = { param_name: 'key' }), pointer: '/auth' },
  { name: 'unknown auth strategy', mutate: (d) => (d.auth = { kerberos: {} }), pointer: '/auth' },
  { name: 'lower-case secret name', mutate: (d) => (d.vaultSecrets = { acme_key: 'secret' }), pointer: '/vaultSecrets/acme_key' },
  { name: 'vaultSecret the strategy never uses', mutate: (d) => (d.vaultSecrets.ACME_OTHER = 'other'), pointer: '/vaultSecrets/ACME_OTHER' },
  { name: 'basic without a password secret', mutate: (d) => ((d.auth = 'basic'), (d.vaultSecrets = { ACME_USER: 'username' })), pointer: '/vaultSecrets', message: /password/ },
  { name: 'hmac without {{signature}}', mutate: (d) => (d.auth = { hmac: { algorithm: 'sha256', header_name: 'x-sig', value_template: 'static' } }), pointer: '/auth/hmac/value_template' },
  { name: 'oauth2 token endpoint over http', mutate: (d) => ((d.auth = { o_auth2: { grant_type: 'client_credentials', token_endpoint: 'http://id.acme.com/token' } }), (d.vaultSecrets = { ACME_ID: 'client_id', ACME_SECRET: 'client_secret' })), pointer: '/auth/o_auth2/token_endpoint' },
  { name: 'missing capabilities', mutate: (d) => delete d.capabilities, pointer: '/', message: /capabilities/ },
  { name: 'validate through another provider\'s capability', mutate: (d) => (d.validate = { capability: 'other/users', method: 'GET', path: '/v1/users' }), pointer: '/validate/capability' },
  { name: 'validate with a method the capability refuses', mutate: (d) => (d.validate = { capability: 'acme/users', method: 'DELETE', path: '/v1/users' }), pointer: '/validate/method' },
  { name: 'validate outside the capability\'s paths', mutate: (d) => (d.validate = { capability: 'acme/users', method: 'GET', path: '/admin' }), pointer: '/validate/path' },
  { name: 'validate with a dot segment', mutate: (d) => (d.validate = { capability: 'acme/users', method: 'GET', path: '/v1/users/../../admin' }), pointer: '/validate/path' },
  { name: 'duplicate capability id', mutate: (d) => d.capabilities.push(structuredClone(d.capabilities[0])), pointer: '/capabilities/1/id' },
];

describe('registry validation refuses broken files', () => {
  const root = mkdtempSync(join(tmpdir(), 'aivault-registry-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('accepts the unbroken base', () => {
    assert.deepEqual(validateProviderText(JSON.stringify(base()), 'base.json').issues, []);
  });

  for (const c of cases) {
    it(`${c.name} → ${c.pointer}`, () => {
      const doc = base() as unknown as Doc;
      c.mutate(doc);
      const { issues } = validateProviderText(JSON.stringify(doc), `${c.name}.json`);
      const hit = issues.find((i) => i.pointer === c.pointer);
      assert.ok(hit, `expected an issue at ${c.pointer}, got ${JSON.stringify(issues)}`);
      assert.equal(hit.file, `${c.name}.json`);
      if (c.message) assert.match(hit.message, c.message);
    });
  }

  it('refuses invalid JSON without quoting its content', () => {
    const { issues } = validateProviderText('{"provider": "sk-live-zzz" ', 'bad.json');
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.message.includes('sk-live'), false);
  });

  it('refuses two providers claiming one secret name, and duplicate provider ids', () => {
    const a = base();
    const b = { ...base(), provider: 'beta', capabilities: [{ id: 'beta/x', provider: 'beta', allow: { hosts: ['api.acme.com'], methods: ['GET' as const], pathPrefixes: ['/x'] } }] };
    const issues = validateProviderSet([{ file: 'a.json', provider: a }, { file: 'b.json', provider: b }, { file: 'c.json', provider: a }]);
    assert.ok(issues.some((i) => i.file === 'b.json' && i.pointer === '/vaultSecrets/ACME_API_KEY' && /also claimed by a.json/.test(i.message)));
    assert.ok(issues.some((i) => i.file === 'c.json' && i.pointer === '/provider'));
  });

  it('`aivault registry validate` reports every file with its pointer and exits 2', async () => {
    const paths: string[] = [];
    cases.forEach((c, i) => {
      const doc = base() as unknown as Doc;
      c.mutate(doc);
      const path = join(root, `case-${i}.json`);
      writeFileSync(path, JSON.stringify(doc, null, 2));
      paths.push(path);
    });
    const good = join(root, 'good.json');
    writeFileSync(good, JSON.stringify(base()));
    const ok = await runCli(['registry', 'validate', good]);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await runCli(['registry', 'validate', '--json', ...paths]);
    assert.equal(r.code, 2);
    const { issues } = JSON.parse(r.stdout) as { issues: Array<{ file: string; pointer: string }> };
    cases.forEach((c, i) => assert.ok(issues.some((x) => x.file === paths[i] && x.pointer === c.pointer), c.name));
    assert.equal(JSON.parse(r.stderr).error.code, 'REGISTRY_INVALID');
  });
});
