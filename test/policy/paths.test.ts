import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAivaultError } from '../../src/errors.ts';
import { assertCleanPath, pathMatchesPrefix } from '../../src/policy/paths.ts';

describe('path hygiene (attacker corpus)', () => {
  const refused = [
    '', 'v1/users', '//evil.example.com/v1', '/v1/users/../admin', '/v1/users/./x', '/v1/users/..', '/v1/%2e%2e/admin', '/v1/%2E%2e/admin',
    '/v1/.%2e/admin', '/v1/users%2fadmin', '/v1/users%2Fadmin', '/v1/users%5cadmin', '/v1/users\\admin', '/v1/users%252fadmin', '/v1/users%00',
    '/v1/users\u0000', '/v1/users\r\nHost: evil', '/v1/us ers', '/v1/users?admin=1', '/v1/users#frag', '/v1//users', '/v1/%75sers', '/v1/ü',
    '/v1/users%', '/v1/users%zz', '/v1/users%0a', '/v1/"x"', '/v1/<x>', '/v1/{x}', 'http://evil.example.com/v1', '/v1/users\t',
  ];
  for (const path of refused) {
    it(`refuses ${JSON.stringify(path)}`, () => {
      assert.throws(() => assertCleanPath(path), (e) => isAivaultError(e, 'MALFORMED_PATH'));
    });
  }
  const accepted = ['/', '/v1/users', '/v1/users/42', '/v1/users/', '/v1/users/a%20b', '/v1/files/report.final.pdf', "/v1/x:y@z!$&'()*+,;=", '/v1/%C3%BC', '/v1/a%3Fb'];
  for (const path of accepted) {
    it(`accepts ${JSON.stringify(path)}`, () => assertCleanPath(path));
  }
});

describe('prefix matching at segment boundaries', () => {
  const cases: Array<[string, string, boolean]> = [
    ['/v1/users', '/v1/users', true],
    ['/v1/users', '/v1/users/42', true],
    ['/v1/users', '/v1/users/', true],
    ['/v1/users', '/v1/users-admin', false],
    ['/v1/users', '/v1/user', false],
    ['/v1/users', '/v1', false],
    ['/v1/users', '/V1/users', false],
    ['/repos/*/*/issues', '/repos/octo/hello/issues/1', true],
    ['/repos/*/*/issues', '/repos/octo/issues', false],
    ['/repos/*/*/issues', '/repos/octo/hello/pulls', false],
    ['/bot', '/botfather', false],
    ['/', '/anything/at/all', true],
  ];
  for (const [prefix, path, expected] of cases) {
    it(`${prefix} ${expected ? 'admits' : 'refuses'} ${path}`, () => assert.equal(pathMatchesPrefix(prefix, path), expected));
  }
});
