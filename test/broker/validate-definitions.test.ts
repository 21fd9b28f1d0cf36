// The owner's definitions checked without storage: what each validator admits is normalised
// to the form requests are matched in, and what it refuses names the API field at fault
// (never a CLI flag; the CLI names its own). Properties with a fixed seed; POLICY_RUNS runs
// them longer, as `npm run fuzz:policy` does for the policy rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AivaultError, isAivaultError } from '../../src/errors.ts';
import { hostMatches, parseHostPattern, patternCovers } from '../../src/policy/hosts.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';
import {
  LIMIT_MAX,
  METHODS,
  normaliseHost,
  normaliseLimits,
  normaliseMethods,
  normalisePathPrefixes,
  validateCapability,
  validateCredential,
  validateEndpointOverride,
  validateFlow,
  type FlowInput,
} from '../../src/broker/validate-definitions.ts';

const RUNS = Number(process.env.POLICY_RUNS ?? 300);
const SEED = Number(process.env.POLICY_SEED ?? (process.env.POLICY_RUNS ? Date.now() : 20261130));
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };

/** The refusal `fn` throws: INVALID_ARGUMENT (or `code`) naming `field`, and no CLI flag. */
function refusal(fn: () => unknown, field: string, code = 'INVALID_ARGUMENT'): AivaultError {
  try {
    fn();
  } catch (err) {
    assert.ok(isAivaultError(err), String(err));
    assert.equal(err.code, code, err.message);
    assert.equal(err.field, field, err.message);
    assert.doesNotMatch(err.message, /(^|\s)--[a-z]/, 'a CLI flag in a library message');
    return err;
  }
  assert.fail(`not refused (expected ${field})`);
}

/** Any refusal names a field and no flag; anything else thrown is a bug. */
function refusedWell(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (!isAivaultError(err)) throw err;
    return typeof err.field === 'string' && err.field.length > 0 && !/(^|\s)--[a-z]/.test(err.message);
  }
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const validHost = fc.tuple(fc.boolean(), name, port).map(([wild, n, p]) => `${wild ? '*.' : ''}${n}${p ? `:${p}` : ''}`);

describe('hosts', () => {
  it('normalising is idempotent, and the result admits the host as a request spells it', () => {
    fc.assert(
      fc.property(name, port, fc.constantFrom('', '.'), fc.boolean(), (n, p, dot, upper) => {
        const written = `${upper ? n.toUpperCase() : n}${dot}${p ? `:${p}` : ''}`;
        let h: string;
        try {
          h = normaliseHost(written);
        } catch (err) {
          // All-digit names read as IPv4 and may be out of range: refused, for the field.
          assert.ok(isAivaultError(err, 'INVALID_ARGUMENT') && err.field === 'hosts');
          return;
        }
        assert.equal(normaliseHost(h), h);
        const url = new URL(`https://${n}${p ? `:${p}` : ''}/`);
        assert.ok(hostMatches(h, url.hostname, Number(url.port) || 443, 443), `${h} admits ${url.host}`);
      }),
      params,
    );
  });

  it('IP literals are written as a URL spells them', () => {
    assert.equal(normaliseHost('127.1'), '127.0.0.1');
    assert.equal(normaliseHost('[0:0::1]:8443'), '[::1]:8443');
    assert.equal(normaliseHost('API.Example.COM.'), 'api.example.com');
  });

  it('anything else is refused for the field given', () => {
    for (const bad of ['', 'a b', 'https://x.com', 'x.com/path', '*.*.x.com', 'x.com:0', 'user@x.com', '-x.com', 'x.com:99999']) {
      refusal(() => normaliseHost(bad), 'hosts');
    }
    refusal(() => normaliseHost('a_b', 'tenants'), 'tenants');
  });
});

describe('methods, path prefixes, limits', () => {
  it('methods: any case, each once, only known ones', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...METHODS), { minLength: 1 }), fc.array(fc.boolean()), (methods, lower) => {
        const written = methods.map((m, i) => (lower[i] ? m.toLowerCase() : m));
        assert.deepEqual(normaliseMethods(written), [...new Set(methods)]);
      }),
      params,
    );
    refusal(() => normaliseMethods([]), 'methods');
    refusal(() => normaliseMethods(['GET', 'TRACE']), 'methods');
    refusal(() => normaliseMethods(['CONNECT']), 'methods');
  });

  it('path prefixes: clean absolute paths are kept once each; any dot segment or encoded separator is refused', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9_~-]{1,8}$/);
    const clean = fc.array(fc.oneof(segment, fc.constant('*')), { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`);
    fc.assert(
      fc.property(fc.array(clean, { minLength: 1, maxLength: 4 }), (prefixes) => {
        assert.deepEqual(normalisePathPrefixes([...prefixes, ...prefixes]), [...new Set(prefixes)]);
      }),
      params,
    );
    const poison = fc.constantFrom('..', '.', '%2e%2e', '%2E.', '%2f', '%5c', '', '\\');
    fc.assert(
      fc.property(clean, poison, fc.boolean(), (prefix, bad, end) => {
        const written = end ? `${prefix}/${bad}` : `/${bad}${prefix}`;
        if (written.endsWith('/') || bad !== '') refusal(() => normalisePathPrefixes([written]), 'pathPrefixes');
      }),
      params,
    );
    assert.deepEqual(normalisePathPrefixes(['/']), ['/']);
    refusal(() => normalisePathPrefixes([]), 'pathPrefixes');
    refusal(() => normalisePathPrefixes(['/v1/']), 'pathPrefixes');
    refusal(() => normalisePathPrefixes(['v1']), 'pathPrefixes');
  });

  it('limits: positive integers up to each maximum, refused by name otherwise', () => {
    const key = fc.constantFrom(...(Object.keys(LIMIT_MAX) as Array<keyof typeof LIMIT_MAX>));
    fc.assert(
      fc.property(key, fc.double({ min: -10, max: 5 * 1024 ** 3, noNaN: true }), (k, v) => {
        const ok = Number.isInteger(v) && v > 0 && v <= LIMIT_MAX[k];
        if (ok) assert.deepEqual(normaliseLimits({ [k]: v }), { [k]: v });
        else refusal(() => normaliseLimits({ [k]: v }), k);
      }),
      params,
    );
    assert.deepEqual(normaliseLimits(), {});
  });
});

describe('credentials and capabilities', () => {
  const ID = '0b0c6f0e-1b2c-4d3e-8f40-5a6b7c8d9e0f';
  const header = { header: { header_name: 'authorization', value_template: 'Bearer {{secret}}' } };
  const credential = { name: 'acme', provider: 'acme', auth: header, secretRefs: { secret: `vault:secret:${ID}` }, hosts: ['API.acme.com'] };

  it('a credential: hosts normalised, secret references read as ids, wildcards acknowledged', () => {
    const { record, wildcards } = validateCredential(credential);
    assert.deepEqual([record.hosts, record.bindings, wildcards], [['api.acme.com'], { secret: ID }, []]);
    assert.deepEqual(validateCredential({ ...credential, hosts: ['*.acme.com'], anyTenant: true }).wildcards, ['*.acme.com']);
    refusal(() => validateCredential({ ...credential, hosts: ['*.acme.com'] }), 'anyTenant');
    refusal(() => validateCredential({ ...credential, hosts: [] }), 'hosts');
    refusal(() => validateCredential({ ...credential, name: 'Acme' }), 'name');
    refusal(() => validateCredential({ ...credential, secretRefs: { other: 'x' } }), 'secretRefs');
    refusal(() => validateCredential({ ...credential, secretRefs: {} }), 'secretRefs');
    refusal(() => validateCredential({ ...credential, secretRefs: { secret: 'vault:secret:nope' } }), 'secretRefs');
    const oauth = { o_auth2: { grant_type: 'client_credentials', token_endpoint: 'http://acme.com/token' } };
    refusal(() => validateCredential({ ...credential, auth: oauth as never, secretRefs: { client_id: 'a', client_secret: 'b' } }), 'allowHttp', 'INSECURE_SCHEME');
  });

  it("a capability's hosts are always within its credential's", () => {
    const owner = { name: 'acme', provider: 'acme', hosts: ['api.acme.com', '*.eu.acme.com:8443'] };
    fc.assert(
      fc.property(fc.array(validHost, { minLength: 1, maxLength: 3 }), (hosts) => {
        const input = { id: 'acme/api', provider: 'acme', credential: 'acme', methods: ['get'], pathPrefixes: ['/v1'], hosts };
        if (!refusedWell(() => validateCapability(input, owner))) assert.fail('a refusal without a field');
        let record;
        try {
          record = validateCapability(input, owner);
        } catch {
          return;
        }
        for (const h of record.hosts) assert.ok(owner.hosts.some((o) => patternCovers(o, h)), h);
      }),
      params,
    );
    const input = { id: 'acme/api', provider: 'acme', credential: 'acme', methods: ['get'], pathPrefixes: ['/v1'], hosts: [] };
    assert.deepEqual(validateCapability(input, owner).hosts, owner.hosts);
    assert.deepEqual(validateCapability(input, owner).methods, ['GET']);
    refusal(() => validateCapability({ ...input, hosts: ['evil.com'] }, owner), 'hosts');
    refusal(() => validateCapability({ ...input, id: 'other/api' }, owner), 'id');
    refusal(() => validateCapability(input, { ...owner, provider: 'other' }), 'credential');
    refusal(() => validateCapability({ ...input, limits: { timeoutMs: 0 } }, owner), 'timeoutMs');
  });
});

describe('endpoint overrides', () => {
  it('tenants fill wildcard hosts, replacements only known hosts, the token endpoint only o_auth2', async () => {
    const registry = await builtinRegistry();
    const box = registry.provider('box');
    const confluence = registry.provider('confluence');
    const set = validateEndpointOverride({ provider: 'confluence', hosts: {}, tenants: ['ACME.atlassian.net'] }, confluence);
    assert.deepEqual(set.hosts, { '*.atlassian.net': 'acme.atlassian.net' });
    assert.ok(hostMatches(parseHostPattern('*.atlassian.net'), 'acme.atlassian.net', 443, 443));
    assert.equal(validateEndpointOverride({ provider: 'box', hosts: { 'api.box.com': '127.0.0.1:9000' } }, box).hosts['api.box.com'], '127.0.0.1:9000');
    refusal(() => validateEndpointOverride({ provider: 'confluence', hosts: {}, tenants: ['acme.example.com'] }, confluence), 'tenants');
    refusal(() => validateEndpointOverride({ provider: 'box', hosts: { 'evil.com': 'x.com' } }, box), 'hosts');
    refusal(() => validateEndpointOverride({ provider: 'box', hosts: { 'api.box.com': '*.x.com' } }, box), 'hosts');
    refusal(() => validateEndpointOverride({ provider: 'box', hosts: {} }, box), 'hosts');
    refusal(() => validateEndpointOverride({ provider: 'box', hosts: {}, tokenEndpoint: 'token' }, box), 'tokenEndpoint');
    refusal(() => validateEndpointOverride({ provider: 'box', hosts: {}, tokenEndpoint: 'https://u:p@box.com/t' }, box), 'tokenEndpoint');
    refusal(() => validateEndpointOverride({ provider: 'box', hosts: {}, tokenEndpoint: 'http://box.com/t' }, box), 'allowHttp', 'INSECURE_SCHEME');
    assert.equal(validateEndpointOverride({ provider: 'box', hosts: {}, tokenEndpoint: 'http://box.com/t', allowHttp: true }, box).tokenEndpoint, 'http://box.com/t');
    refusal(() => validateEndpointOverride({ provider: 'confluence', hosts: {}, tokenEndpoint: 'https://x.com/t' }, confluence), 'tokenEndpoint');
  });
});

describe('flows', () => {
  const acquire: FlowInput = { id: 'issuer/token', mode: 'acquire_secret', method: 'post', target: 'https://issuer.example.com/oauth/token', kind: 'oauth_token_response.access_token', storeAlias: 'ISSUED_TOKEN' };

  it('an acquire: the kind names the field, the answer is only ever a shape', () => {
    const flow = validateFlow(acquire);
    assert.deepEqual([flow.method, flow.visibility, flow.storeField, flow.credential], ['POST', 'shape_only', 'access_token', null]);
    refusal(() => validateFlow({ ...acquire, visibility: 'passthrough' }), 'visibility');
    refusal(() => validateFlow({ ...acquire, kind: 'other' }), 'kind');
    refusal(() => validateFlow({ ...acquire, kind: undefined }), 'kind');
    refusal(() => validateFlow({ ...acquire, storeAlias: 'lower' }), 'storeAlias');
    refusal(() => validateFlow({ ...acquire, mode: 'send_secret' }), 'credential');
    refusal(() => validateFlow({ ...acquire, mode: 'steal_secret' }), 'mode');
    refusal(() => validateFlow({ ...acquire, method: 'HEAD' }), 'method');
    refusal(() => validateFlow({ ...acquire, target: 'http://issuer.example.com/t' }), 'allowHttp', 'INSECURE_SCHEME');
    refusal(() => validateFlow({ ...acquire, target: 'https://issuer.example.com/a/%2e%2e/t' }), 'target');
    refusal(() => validateFlow({ ...acquire, target: 'https://issuer.example.com/t#x' }), 'target');
  });

  it('whatever an owner writes, a flow is refused for a field or is https (http only if allowed) with a clean path', () => {
    const target = fc.tuple(fc.constantFrom('https://', 'http://', 'ftp://', '', 'https://u:p@'), name, fc.constantFrom('/t', '/a/../t', '/%2F', '', '/t?x=1', '/t#f', '/./t')).map((p) => p.join(''));
    const input = fc.record({
      id: fc.constantFrom('a/b', 'A/b', 'a', 'a/b/c'),
      mode: fc.constantFrom('send_secret', 'acquire_secret', 'bidirectional_secret', 'x'),
      method: fc.constantFrom('get', 'POST', 'TRACE'),
      target,
      visibility: fc.option(fc.constantFrom('passthrough', 'shape_only', 'all'), { nil: undefined }),
      kind: fc.option(fc.constantFrom('oauth_token_response.access_token', 'x'), { nil: undefined }),
      storeField: fc.option(fc.constantFrom('token', '1bad'), { nil: undefined }),
      storeAlias: fc.option(fc.constantFrom('A_TOKEN', 'a'), { nil: undefined }),
      credential: fc.option(fc.constant('acme'), { nil: undefined }),
      allowHttp: fc.boolean(),
    });
    fc.assert(
      fc.property(input, (i) => {
        assert.ok(refusedWell(() => validateFlow(i)));
        let flow;
        try {
          flow = validateFlow(i);
        } catch {
          return;
        }
        const url = new URL(flow.target);
        assert.ok(url.protocol === 'https:' || (url.protocol === 'http:' && i.allowHttp));
        assert.equal(url.hash, '');
        assert.equal(url.username, '');
        assert.ok(!url.pathname.split('/').some((s) => s === '..' || s === '.'));
        if (flow.mode !== 'send_secret') assert.equal(flow.visibility, 'shape_only');
        else assert.ok(flow.credential);
      }),
      params,
    );
  });
});
