// What a word of `aivault grant` names: a capability by id, or PROVIDER/* (every capability
// of that provider, expanded when granted). The rule, as properties over generated ids, and
// the facts about capability ids it rests on, over the real registry and the definition checks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { validateCapability, validateFlow } from '../../src/broker/validate-definitions.ts';
import { isAivaultError } from '../../src/errors.ts';
import { covers, grantTarget, providerOf } from '../../src/policy/grant-targets.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';

/** A fixed seed in `npm test`; `npm run fuzz:policy` runs these long, with a fresh seed unless given one. */
const RUNS = Number(process.env.POLICY_RUNS ?? 300);
const SEED = Number(process.env.POLICY_SEED ?? (process.env.POLICY_RUNS ? Date.now() : 20261130));
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };

const invalid = (e: unknown) => isAivaultError(e, 'INVALID_ARGUMENT');

// Provider names that are prefixes, extensions and near misses of each other.
const providerName = fc.oneof(
  fc.constantFrom('openai', 'openai-x', 'open', 'openaix', 'github', 'git', 'a', 'a-b', 'ab'),
  fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,8}$/),
);
const capabilityName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,8}$/);
const capability = fc.record({ provider: providerName, name: capabilityName }).map(({ provider, name }) => ({ id: `${provider}/${name}`, provider }));

describe('grant targets: PROVIDER/* and nothing else', () => {
  it('PROVIDER/* covers a capability exactly when the capability is that provider’s (property)', () => {
    fc.assert(
      fc.property(providerName, capability, (p, c) => covers(grantTarget(`${p}/*`), c) === (c.provider === p)),
      params,
    );
  });

  it('an id covers only itself, and names no pattern (property)', () => {
    fc.assert(
      fc.property(capability, capability, (a, b) => {
        const target = grantTarget(a.id);
        return 'id' in target && covers(target, b) === (a.id === b.id);
      }),
      params,
    );
  });

  it('a "*" anywhere but in PROVIDER/* is refused (property)', () => {
    const withStar = fc
      .tuple(fc.string({ maxLength: 12 }), fc.constantFrom('*', '**', '/*', '*/', '/*/', '*/*'), fc.string({ maxLength: 12 }))
      .map(([a, star, b]) => `${a}${star}${b}`);
    fc.assert(
      fc.property(withStar, (text) => {
        if (/^[^/*]+\/\*$/.test(text)) return 'provider' in grantTarget(text);
        assert.throws(() => grantTarget(text), invalid, text);
        return true;
      }),
      params,
    );
  });

  for (const text of ['*', '/*', '*/*', 'openai/*/x', 'openai/chat-*', 'open*/models', 'openai/**', 'openai/*x', 'a/b/*', '**/*']) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.throws(() => grantTarget(text), invalid));
  }

  it('accepts openai/* as the openai provider, and a plain id as itself', () => {
    assert.deepEqual(grantTarget('openai/*'), { provider: 'openai' });
    assert.deepEqual(grantTarget('openai/models'), { id: 'openai/models' });
  });
});

describe('what the rule rests on', () => {
  it("every built-in capability's id starts with its provider, so revoking PROVIDER/* by id takes exactly its grants", async () => {
    const registry = await builtinRegistry();
    for (const c of registry.capabilities.values()) assert.equal(providerOf(c.id), c.provider, c.id);
    for (const p of registry.providers.values()) assert.ok(p.capabilities.length > 0, `${p.provider} has capabilities for PROVIDER/* to cover`);
  });

  it('no capability or flow can be created with a "*" in its id (property)', () => {
    const credential = { name: 'c', provider: 'p', hosts: ['api.example.com'] };
    const starred = fc.tuple(fc.stringMatching(/^[a-z0-9/._-]{0,8}$/), fc.stringMatching(/^[a-z0-9/._-]{0,8}$/)).map(([a, b]) => `p/${a}*${b}`);
    fc.assert(
      fc.property(starred, (id) => {
        assert.throws(() => validateCapability({ id, provider: 'p', credential: 'c', methods: ['GET'], pathPrefixes: ['/v1'], hosts: [], limits: {} }, credential), invalid, id);
        assert.throws(() => validateFlow({ id, mode: 'acquire_secret', target: 'https://api.example.com/token', method: 'POST', storeAlias: 'X_TOKEN', kind: 'oauth_token_response.access_token' }), invalid, id);
        return true;
      }),
      params,
    );
  });
});
