// The environment `aivault run` hands its child: the rule, over inputs (fast-check, fixed seed).
// test/cli/run.test.ts checks the same end to end, through a real child process.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { childEnvironment } from '../../src/cli/child-env.ts';
import { ENCODINGS, secretArb, textArb } from '../broker/scrub-encodings.ts';

const params = { numRuns: 300, seed: 20261130, endOnFailure: true };
const none = new Set<string>();

describe("aivault run: the child's environment", () => {
  it('drops any variable holding a stored secret in any encoding the scrubber knows, inside any text', () => {
    fc.assert(
      fc.property(secretArb, textArb, textArb, fc.constantFrom(...Object.keys(ENCODINGS)), fc.nat(), (secret, before, after, name, seed) => {
        const value = ENCODINGS[name]!(`${before}${secret}${after}`, seed);
        const { env, dropped } = childEnvironment({ KEEP: 'plain', COPY: value }, none, [secret]);
        assert.deepEqual(env, { KEEP: 'plain' }, `${name}: ${JSON.stringify(value)}`);
        assert.deepEqual(dropped, ['COPY']);
      }),
      params,
    );
  });

  it("drops the vault's credentials from the environment by name, and their copies under any name by value", () => {
    const parent = {
      AIVAULT_PASSPHRASE: 'owner passphrase 1',
      AIVAULT_DATABASE_URL: 'postgres://vault:db%2Fpass%3Dword@127.0.0.1/x?sslpassword=keypass99',
      AIVAULT_AGENT_TOKEN: 'avt_parenttokenparenttoken',
      PGPASSWORD: 'pgpassword-1',
      PGSERVICE: 'vault',
      A: 'OWNER PASSPHRASE 1',
      B: 'db/pass=word',
      C: 'x keypass99',
      D: Buffer.from('avt_parenttokenparenttoken').toString('base64'),
      E: 'pgpassword-1\n',
      F: 'https://me:pw@proxy.example:3128',
      G: 'postgres://app@db.example/app?password=x',
      PGHOST: 'db.example',
      HOME: '/home/owner',
      HTTPS_PROXY: 'https://proxy.example:3128',
    };
    const { env, dropped } = childEnvironment(parent, new Set(['OPENAI_API_KEY']), []);
    assert.deepEqual(env, { PGHOST: 'db.example', HOME: '/home/owner', HTTPS_PROXY: 'https://proxy.example:3128' });
    assert.equal(dropped.length, Object.keys(parent).length - 3);
    assert.deepEqual(childEnvironment({ OPENAI_API_KEY: 'x', [`N_secretvalue1`]: '1' }, new Set(['OPENAI_API_KEY']), ['secretvalue1']).dropped, ['OPENAI_API_KEY', '(a name holding a secret)']);
  });
});
