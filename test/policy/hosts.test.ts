// Host rules as properties: what a host pattern admits, how a request's host is read, and
// which tenants a wildcard credential reaches. A fixed seed in `npm test`; `npm run
// fuzz:policy` runs them long with a fresh seed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAivaultError } from '../../src/errors.ts';
import { resolveTarget } from '../../src/policy/target.ts';
import { assertTenant } from '../../src/policy/tenants.ts';

const RUNS = Number(process.env.POLICY_RUNS ?? 300);
const SEED = Number(process.env.POLICY_SEED ?? (process.env.POLICY_RUNS ? Date.now() : 20261130));
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };

/** Labels and characters an attacker would try around a host name. */
const label = fc.constantFrom('api', 'example', 'com', 'evil', 'tenant', 'a', 'xn--e1a', 'example-com', 'com-evil', '127', '0', '');
const glue = fc.constantFrom('.', '..', '@', ':443', ':80', ':8443', '%2e', '%40', '\\', '/', '#', '?', '。', '．', ' ', '\t', '*', '');
const host = fc.array(fc.tuple(label, glue), { minLength: 1, maxLength: 6 }).map((parts) => parts.map(([l, g]) => l + g).join(''));

/** Whether `name` is `base` or one extra non-empty label on it, ignoring case and one trailing dot. */
function admitted(pattern: string, hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  if (!pattern.startsWith('*.')) return h === pattern;
  const base = pattern.slice(2);
  if (!h.endsWith(`.${base}`)) return false;
  const extra = h.slice(0, -(base.length + 1));
  return extra.length > 0 && !extra.includes('.');
}

describe('host rules (properties)', () => {
  for (const pattern of ['api.example.com', '*.example.com']) {
    it(`a request reaches a host ${pattern} admits, on the default port, or is refused`, () => {
      fc.assert(
        fc.property(host, (raw) => {
          let target;
          try {
            target = resolveTarget({ hosts: [pattern], pathPrefixes: ['/v1'], allowHttp: false }, { host: raw, path: '/v1/x' });
          } catch (err) {
            return isAivaultError(err);
          }
          // What the URL will connect to is what the pattern admitted, nothing else.
          assert.equal(target.url.protocol, 'https:');
          assert.equal(target.url.port, '');
          assert.ok(admitted(pattern, target.url.hostname), `${JSON.stringify(raw)} reached ${target.url.hostname}`);
          assert.equal(target.url.username + target.url.password, '');
          return true;
        }),
        params,
      );
    });
  }

  it('a wildcard credential reaches only exact hosts and the tenants the owner bound', () => {
    const tenant = fc.array(fc.constantFrom('owner', 'evil', 'owner-evil', 'x', 'owner.x'), { minLength: 1, maxLength: 2 }).map((a) => `${a.join('')}.example.com`);
    fc.assert(
      fc.property(fc.array(tenant, { maxLength: 3 }), tenant, (bound, addressed) => {
        const hosts = ['*.example.com', 'static.example.net'];
        const tenants = new Map(bound.length ? [['*.example.com', bound]] : []);
        let passed = true;
        try {
          assertTenant(hosts, tenants, addressed);
        } catch (err) {
          assert.ok(isAivaultError(err, 'HOST_NOT_ALLOWED') || isAivaultError(err, 'CREDENTIAL_NOT_READY'));
          passed = false;
        }
        assert.equal(passed, bound.includes(addressed) && admitted('*.example.com', addressed));
        assertTenant(hosts, tenants, 'STATIC.example.net.');
      }),
      params,
    );
  });
});
