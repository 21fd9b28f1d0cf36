// Which agent headers travel upstream, which are dropped and which refuse the request; and
// which upstream response headers reach the agent. Decisions are by the name a CGI-style
// stack reads, so every spelling of a name gets its twin's decision (a property: a fixed
// seed by default; POLICY_RUNS and POLICY_SEED run it longer, or afresh).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAivaultError } from '../../src/errors.ts';
import { cgiName, headerAllowed, keepResponseHeader, MAX_AGENT_HEADERS, sanitizeAgentHeaders, valuesNamed } from '../../src/policy/headers.ts';

const RUNS = Number(process.env.POLICY_RUNS ?? 300);
const SEED = Number(process.env.POLICY_SEED ?? (process.env.POLICY_RUNS ? Date.now() : 20261130));
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };

const OWNED = ['Authorization', 'X-Api-Key'];
const OVERRIDES = ['x-http-method-override', 'x-forwarded-*'];
const sent = (headers: Array<[string, string]>, overrides: readonly string[] = []) => sanitizeAgentHeaders(headers, OWNED, overrides);
const passes = (name: string, overrides: readonly string[] = []) => sent([[name, 'v']], overrides).size === 1;
const malformed = (e: unknown) => isAivaultError(e, 'MALFORMED_HEADER');

describe('agent headers: dropped', () => {
  const dropped = [
    // Credentials, and the strategy's own header in any spelling.
    'Authorization', 'Proxy-Authorization', 'Cookie', 'X-Api-Key', 'x_api_key', 'X.API.KEY',
    // Framing and hop-by-hop.
    'Host', 'Connection', 'Keep-Alive', 'Proxy-Connection', 'TE', 'Trailer', 'Transfer-Encoding', 'Transfer_Encoding', 'Upgrade', 'Content-Length', 'Content.Length', 'Expect', 'Accept-Encoding', 'HTTP2-Settings',
    // httpoxy and any proxy-* header.
    'Proxy', 'Proxy-Anything', 'proxy_x',
    // Steering the upstream's idea of method, path, host or client.
    'X-HTTP-Method-Override', 'X.HTTP.Method.Override', 'x_http_method_override', 'X-HTTP-Method', 'X-Method-Override', 'X-Original-URL', 'X-Rewrite-URL', 'X-Forwarded-For',
    'X-Forwarded-Host', 'x_forwarded_proto', 'Forwarded', 'Via', 'X-Real-IP', 'X_Real_IP', 'True-Client-IP', 'CF-Connecting-IP', 'X-Envoy-Original-Path', 'X-Middleware-Subrequest', 'X-Host',
  ];
  for (const name of dropped) it(`drops ${name}`, () => assert.equal(passes(name), false));

  const kept = ['Content-Type', 'Accept', 'User-Agent', 'X-Request-Id', 'Idempotency-Key', 'OpenAI-Beta', 'X-Api-Version', 'If-None-Match', 'Authorization2', 'Proxied-By'];
  for (const name of kept) it(`lets ${name} through`, () => assert.equal(passes(name), true));

  it('lets a steering header through only when the capability names it (exactly or by prefix), in every spelling', () => {
    for (const name of ['X-HTTP-Method-Override', 'X.HTTP.Method.Override', 'x_http_method_override', 'X-Forwarded-For', 'x_forwarded_host']) assert.equal(passes(name, OVERRIDES), true, name);
    for (const name of ['X-HTTP-Method', 'X-Original-URL', 'Forwarded', 'X-Real-IP']) assert.equal(passes(name, OVERRIDES), false, name);
    // Naming a steering header never lets a credential or framing header through.
    assert.equal(passes('Authorization', ['authorization']), false);
    assert.equal(passes('Content-Length', ['content-*']), false);
  });
});

describe('agent headers: Connection', () => {
  it('drops every header the Connection header names, in any spelling, with the Connection header itself', () => {
    const out = sent([
      ['Connection', 'close, X-Trace-Ctx ,x_debug'],
      ['connection', 'X.Other'],
      ['X_Trace_Ctx', 'a'],
      ['x-trace-ctx', 'b'],
      ['X-Debug', 'c'],
      ['x-other', 'd'],
      ['X-Kept', 'e'],
    ]);
    assert.deepEqual([...out], [['x-kept', 'e']]);
  });

  it('a name listed in Connection but not sent drops nothing else', () => {
    assert.deepEqual([...sent([['Connection', 'x-absent'], ['Accept', 'application/json']])], [['accept', 'application/json']]);
  });
});

describe('agent headers: values and refusals', () => {
  it('values are trimmed; repeats of one name joined in order; tab and Latin-1 kept', () => {
    const out = sent([['X-Tag', ' a '], ['x-tag', 'b'], ['X-TAG', 'c\td'], ['X-Name', 'café']]);
    assert.deepEqual([...out], [['x-tag', 'a, b, c\td'], ['x-name', 'café']]);
  });

  it('refuses a name a header name cannot have', () => {
    for (const name of ['', 'x a', 'x:y', ':authority', 'x\ty', 'x\r\ny', 'ü', '(x)', 'x/y', 'x@y', 'x,y', 'x;y', 'x=y', '[x]', 'x"y']) {
      assert.throws(() => sent([[name, 'v']]), malformed, JSON.stringify(name));
    }
  });

  it('refuses a control character or a character past Latin-1 in a value, even in a header that would be dropped', () => {
    for (const value of ['a\r\nX-Injected: 1', 'a\nb', 'a\rb', 'a\u0000b', 'a\u007fb', 'a\u001bb', '€', 'a\u2028b', '\ud83d\ude00']) {
      assert.throws(() => sent([['X-Tag', value]]), malformed, JSON.stringify(value));
      assert.throws(() => sent([['Authorization', value]]), malformed, JSON.stringify(value));
    }
  });

  it(`refuses more than ${MAX_AGENT_HEADERS} headers`, () => {
    const many = (n: number) => Array.from({ length: n }, (_, i): [string, string] => [`x-h${i}`, 'v']);
    assert.equal(sent(many(MAX_AGENT_HEADERS)).size, MAX_AGENT_HEADERS);
    assert.throws(() => sent(many(MAX_AGENT_HEADERS + 1)), malformed);
  });
});

describe('header names as CGI stacks read them', () => {
  it('cgiName folds case and every non-alphanumeric to "-"', () => {
    assert.equal(cgiName('X.HTTP.Method.Override'), 'x-http-method-override');
    assert.equal(cgiName('X_Forwarded_For'), 'x-forwarded-for');
    assert.equal(cgiName("a!b#c$d%e&f'g*h+i^j`k|l~m"), 'a-b-c-d-e-f-g-h-i-j-k-l-m');
  });

  it('valuesNamed gathers every spelling of a name that travels (Puma reads Content_Type as CONTENT_TYPE)', () => {
    const headers = sent([['Content-Type', 'application/json'], ['Content_Type', 'application/x-www-form-urlencoded'], ['content.type', 'text/plain'], ['Content-Types', 'x']]);
    assert.deepEqual(valuesNamed(headers, 'content-type'), ['application/json', 'application/x-www-form-urlencoded', 'text/plain']);
  });

  it('headerAllowed matches an exact name, or a prefix with a trailing *', () => {
    assert.equal(headerAllowed(['x-amz-*'], 'x-amz-target'), true);
    assert.equal(headerAllowed(['x-amz-*'], 'x-amzn-target'), false);
    assert.equal(headerAllowed(['x-amz-target'], 'x-amz-target'), true);
    assert.equal(headerAllowed(['x-amz-target'], 'x-amz-target2'), false);
    assert.equal(headerAllowed([], 'x-amz-target'), false);
  });

  /** Names an attacker would respell: dropped, owned, steering, named by a capability, and plain ones. */
  const base = fc.oneof(
    fc.constantFrom('authorization', 'x-api-key', 'content-length', 'transfer-encoding', 'proxy', 'proxy-x', 'x-http-method-override', 'x-forwarded-for', 'x-original-url', 'forwarded', 'x-real-ip', 'x-trace-ctx', 'content-type', 'x-request-id'),
    fc.array(fc.stringMatching(/^[a-z0-9]{1,6}$/), { minLength: 1, maxLength: 4 }).map((words) => words.join('-')),
  );
  /** Another spelling of `name` that CGI stacks read as the same: any case, any separator. */
  const respell = (name: string) =>
    fc.tuple(...[...name].map((ch) => (ch === '-' ? fc.constantFrom(...'!#$%&\'*+.^_`|~-') : /[a-z]/.test(ch) ? fc.constantFrom(ch, ch.toUpperCase()) : fc.constant(ch)))).map((chars) => chars.join(''));
  const spellings = base.chain((name) => fc.tuple(fc.constant(name), respell(name), respell(name)));

  it('every spelling of a name gets the decision its CGI twin gets', () => {
    fc.assert(
      fc.property(spellings, fc.boolean(), ([name, a, b], withOverrides) => {
        const overrides = withOverrides ? OVERRIDES : [];
        assert.equal(cgiName(a), name);
        assert.equal(passes(a, overrides), passes(name, overrides), a);
        assert.equal(passes(b, overrides), passes(name, overrides), b);
      }),
      params,
    );
  });

  it('a Connection header drops every spelling of what it names', () => {
    fc.assert(
      fc.property(spellings, ([, listed, sentAs]) => {
        assert.equal(sent([['Connection', listed], [sentAs, 'v']]).size, 0);
      }),
      params,
    );
  });
});

describe('upstream response headers', () => {
  it('drops hop-by-hop and framing headers, in any case', () => {
    for (const name of ['Connection', 'keep-alive', 'Proxy-Connection', 'Transfer-Encoding', 'TE', 'Trailer', 'Upgrade', 'Proxy-Authenticate', 'Content-Length', 'Content-Encoding']) {
      assert.equal(keepResponseHeader(name), false, name);
    }
  });

  it("drops anything in aivault's own namespace: an upstream cannot pass its answer off as aivault's", () => {
    for (const name of ['x-aivault-error', 'X-Aivault-Error', 'X-AIVAULT-anything']) assert.equal(keepResponseHeader(name), false, name);
  });

  it('keeps the rest', () => {
    for (const name of ['Content-Type', 'ETag', 'Retry-After', 'X-RateLimit-Remaining', 'X-Request-Id', 'x-aivaultish']) assert.equal(keepResponseHeader(name), true, name);
  });
});
