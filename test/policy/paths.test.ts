import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
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

/** A fixed seed in `npm test`; `npm run fuzz:policy` runs these long, with a fresh seed unless given one. */
const RUNS = Number(process.env.POLICY_RUNS ?? 400);
const SEED = Number(process.env.POLICY_SEED ?? (process.env.POLICY_RUNS ? Date.now() : 20261130));
if (process.env.POLICY_RUNS) console.log(`fuzz:policy paths: ${RUNS} runs, seed ${SEED}`);

/** Dot segments resolved the RFC 3986 way, over already split segments. */
function resolveDots(segments: string[]): string[] {
  const out: string[] = [];
  for (const s of segments) {
    if (s === '..') out.pop();
    else if (s !== '.') out.push(s);
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Percent-decoding the way old decoders did: an overlong two-byte sequence is its ASCII character. */
function lenientDecode(s: string): string {
  return decode(s.replace(/%C0%(A[EF]|AE)/gi, (_m, x: string) => (x.toUpperCase() === 'AE' ? '.' : '/')));
}

/**
 * How the servers an upstream may run read a path: RFC 3986 as written; nginx-like (decode,
 * merge slashes, resolve); Tomcat/Spring-like (drop `;` parameters per segment, decode,
 * resolve); IIS-like (backslash is a separator too).
 */
function readings(path: string): string[][] {
  const split = (p: string, sep: RegExp = /\//) => p.split(sep).slice(1);
  const noParams = (segs: string[]) => segs.map((s) => s.split(';', 1)[0]!);
  return [
    resolveDots(split(path)),
    resolveDots(split(decode(path)).filter((s) => s !== '')),
    resolveDots(noParams(split(path)).map(decode)),
    resolveDots(noParams(split(path).map(decode))),
    resolveDots(split(decode(path), /[/\\]/)),
    // Unicode-normalising routers, Windows best-fit, lenient UTF-8 decoders (overlong dots).
    resolveDots(noParams(split(lenientDecode(path).normalize('NFKC'), /[/\\]/))),
  ];
}

describe('no server reads an admitted path outside its prefix (property)', () => {
  // Mostly what a clean path may hold; the rarer ones are refused as written anyway.
  const fragment = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('v1', 'users', 'admin', '..', '.', ';', ';x=1', ';jsessionid=a', '%3b', '%3B', 'x', '') },
    { weight: 1, arbitrary: fc.constantFrom('%2e', '%2E', '%2f', '%5c', '\\', '%25', '%20', '42', '%C0%AE', '%C0%AF', '%EF%BC%8E', '%EF%BC%8F', '%E2%80%A5', '%EF%BC%9B', '%C3%BC') },
  );
  const segment = fc.array(fragment, { minLength: 1, maxLength: 3 }).map((a) => a.join(''));
  // A path the prefix admits as written, then anything: what comes after is the attack.
  const tail = fc.array(segment, { minLength: 1, maxLength: 5 }).map((a) => a.join('/'));
  const prefix = fc.constantFrom('/v1', '/v1/users', '/v1/users/*', '/v1/*/x');
  it('for every clean path a prefix admits, every reading starts with the prefix', () => {
    fc.assert(
      fc.property(prefix, tail, (p, rest) => {
        const raw = `${p.replaceAll('*', 'x')}/${rest}`;
        try {
          assertCleanPath(raw);
        } catch {
          return true;
        }
        if (!pathMatchesPrefix(p, raw)) return true;
        const want = p.split('/').slice(1);
        for (const read of readings(raw)) {
          const ok = read.length >= want.length && want.every((w, i) => (w === '*' ? (read[i] ?? '') !== '' : read[i] === w));
          if (!ok) return false;
        }
        return true;
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  });
});
