// Method overrides in parameters (issue 15): whatever spelling or content type an agent picks,
// a query or body that PHP, Rack or qs would read as `_method` (or ASP.NET as
// `X-HTTP-Method-Override`) is refused. The oracles below model those parsers from their
// sources (php-src main/php_variables.c and SAPI.c, rack/request.rb and query_parser.rb, qs),
// independently of src/policy/overrides.ts. Fixed seed; POLICY_RUNS and POLICY_SEED run it
// longer, or afresh (`npm run fuzz:policy`).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { isAivaultError, type ErrorCode } from '../../src/errors.ts';
import { assertNoMethodOverride } from '../../src/policy/overrides.ts';

const RUNS = Number(process.env.POLICY_RUNS ?? 300);
const SEED = Number(process.env.POLICY_SEED ?? (process.env.POLICY_RUNS ? Date.now() : 20261130));
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true };
if (process.env.POLICY_RUNS) console.log(`fuzz:policy overrides: ${RUNS} runs, seed ${SEED}`);

/** The names some stack takes for the method, as they spell them (compared ignoring case). */
const OVERRIDES = ['_method', 'X-HTTP-Method-Override', 'X_HTTP_METHOD_OVERRIDE', 'X-HTTP-Method', 'X-Method-Override'];
const isOverride = (key: string | undefined) => key !== undefined && OVERRIDES.some((o) => o.toLowerCase() === key.toLowerCase());

/** php_url_decode and Rack's unescape: `+` is a space, `%XX` a byte. */
const urlDecode = (s: string) => s.replace(/\+/g, ' ').replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** php_register_variable_ex (PHP 8): the top-level key a decoded name lands in. */
function phpKey(raw: string): string | undefined {
  const v = raw.split('\0', 1)[0]!.replace(/^ +/, '');
  let key = '';
  let i = 0;
  for (; i < v.length && v[i] !== '['; i++) key += v[i] === ' ' || v[i] === '.' ? '_' : v[i];
  if (key === '' || i === v.length) return key || undefined;
  let ip = i + 1;
  if (/\s/.test(v[ip] ?? '')) ip++;
  if (v[ip] === ']' || v.indexOf(']', ip) >= 0) return key;
  return `${key}_${v.slice(i + 1).replace(/[ .[]/g, '_')}`;
}

/** Rack 2 `normalize_params`: a string (or array) value only when nothing but `[]` follows the key. */
function rack2Key(name: string): string | undefined {
  const m = /^[[\]]*([^[\]]+)\]*/.exec(name);
  if (!m) return undefined;
  const after = name.slice(m[0].length);
  return after === '' || after === '[]' ? m[1] : undefined;
}

/** Rack 3: the key ends at a `[` past the first character. */
function rack3Key(name: string): string | undefined {
  const start = name.indexOf('[', 1);
  if (start < 0) return name;
  return name.slice(start) === '[]' ? name.slice(0, start) : undefined;
}

/** qs (Express): `a[]` and `a[0]` are arrays method-override takes the first of; `[a]` is `a`. */
function qsKey(name: string): string | undefined {
  const i = name.indexOf('[');
  if (i < 0) return name;
  if (i === 0) return /^\[([^[\]]+)\]$/.exec(name)?.[1];
  return /^\[\d*\]$/.test(name.slice(i)) ? name.slice(0, i) : undefined;
}

/** Whether some stack reads a wire-form (still encoded) parameter name as a method override. */
const someStackReads = (wire: string) => [phpKey, rack2Key, rack3Key, qsKey].some((read) => isOverride(read(urlDecode(wire))));

/** Spellings of an override name: case, `_`/`-` as `.`, space or `[`, leading spaces or brackets, an index or a NUL tail. */
const spelling = fc
  .tuple(
    fc.constantFrom(...OVERRIDES),
    fc.array(fc.boolean(), { minLength: 32, maxLength: 32 }),
    fc.array(fc.constantFrom('_', '.', ' ', '[', '-'), { minLength: 32, maxLength: 32 }),
    fc.constantFrom('', ' ', '  ', '[', ']]', '[ '),
    fc.constantFrom('', '[]', '[0]', '[x]', ']', '\0tail', '[', '\0'),
  )
  .map(([base, upper, seps, pre, post]) => pre + [...base].map((c, i) => (c === '_' || c === '-' ? seps[i]! : upper[i] ? c.toUpperCase() : c.toLowerCase())).join('') + post);

/** A decoded name as it may travel: each character literal (when it can be), `%XX` or, for a space, `+`. */
const wireForm = (name: string) =>
  fc.array(fc.nat(2), { minLength: name.length, maxLength: name.length }).map((how) =>
    [...name]
      .map((c, i) => {
        const hex = `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
        if (c === ' ') return ['+', '%20', '%20'][how[i]!]!;
        if (/[A-Za-z0-9._\-[\]]/.test(c) && how[i] === 0) return c;
        return how[i] === 2 ? hex.toUpperCase() : hex;
      })
      .join(''),
  );

const overrideWire = spelling.chain(wireForm).filter(someStackReads);

const refused = (code: ErrorCode) => (e: unknown) => isAivaultError(e, code);
const FORM = 'application/x-www-form-urlencoded';
const body = (s: string) => new TextEncoder().encode(s);

/** Rack 2 and 3 `media_type`, PHP's SAPI content type: whether each reads a POST body with this content type (none: undefined) as a form. */
function someStackReadsForm(ct: string | undefined): boolean {
  const types = new Set([FORM, 'multipart/form-data']);
  if (ct === undefined) return true;
  const rack2 = ct.split(/\s*[;,]\s*/)[0]!.toLowerCase();
  const rack3 = ct.split(/[;,]/)[0]!.trimEnd().toLowerCase();
  const php = ct.toLowerCase().split(/[;, ]/)[0]!;
  return ct === '' || [rack2, rack3, php].some((t) => types.has(t));
}

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 16 });
const formValue = fc
  .oneof(
    fc.constant(''),
    fc
      .tuple(fc.constantFrom(FORM, 'multipart/form-data'), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), fc.constantFrom('', ' ', '\t'), fc.constantFrom('', ';', ',', ' ', '\t', ' ;', ', ', '; charset=utf-8'), printable)
      .map(([type, upper, lead, sep, tail]) => lead + [...type].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('') + sep + (sep ? tail : '')),
  )
  .filter(someStackReadsForm);
/**
 * The content-type values sent (joined, when there are two, by whoever reads them): none, or
 * a form type among others, in any order; Puma reads a `Content_Type` twin as one of them.
 */
const formContentTypes = fc.oneof(
  fc.constant([] as string[]),
  fc.tuple(formValue, fc.array(fc.constantFrom('application/json', 'text/plain', 'application/octet-stream'), { maxLength: 2 }), fc.nat()).map(([form, others, at]) => (others as string[]).toSpliced(at % (others.length + 1), 0, form)),
  fc.tuple(formValue, fc.constantFrom('application/json', 'text/plain')).map(([form, other]) => [`${other}, ${form}`]),
);

describe('method overrides in parameters', () => {
  it('the attacker\'s reproductions are refused', () => {
    const form = refused('METHOD_NOT_ALLOWED');
    assert.throws(() => assertNoMethodOverride('', [], body('_method=DELETE')), form, 'no content type: Rack reads a POST as a form');
    assert.throws(() => assertNoMethodOverride('', [''], body('_method=DELETE')), form);
    for (const ct of [`${FORM}, text/plain`, `${FORM} x`, `${FORM}, ${FORM}`, `${FORM}\tx`, `"${FORM}"`, `APPLICATION/X-WWW-FORM-URLENCODED ;charset=utf-8`]) {
      assert.throws(() => assertNoMethodOverride('', [ct], body('a=1&_method=DELETE')), form, ct);
    }
    assert.throws(() => assertNoMethodOverride('', ['application/json', FORM], body('_method=DELETE')), form, 'a second content type (a Content_Type twin, to Puma)');
    assert.throws(() => assertNoMethodOverride('?+_method=DELETE', [FORM], undefined), refused('MALFORMED_URL'));
    assert.throws(() => assertNoMethodOverride('?%20_method=DELETE', [FORM], undefined), refused('MALFORMED_URL'));
    assert.throws(() => assertNoMethodOverride('', [FORM], body('+_method=DELETE')), form);
  });

  it('a compressed form is read inflated too (body-parser inflates gzip, deflate, br); an encoding aivault cannot undo is refused', () => {
    const override = body('a=1&_method=DELETE');
    const encoded: Array<[string[], Uint8Array]> = [[['gzip'], gzipSync(override)], [['X-Gzip'], gzipSync(override)], [['deflate'], deflateSync(override)], [['deflate'], deflateRawSync(override)], [['br'], brotliCompressSync(override)], [['gzip, br'], brotliCompressSync(gzipSync(override))], [['identity', 'gzip'], gzipSync(override)]];
    for (const [encodings, bytes] of encoded) {
      for (const ct of [[], [FORM]]) assert.throws(() => assertNoMethodOverride('', ct, bytes, encodings), refused('METHOD_NOT_ALLOWED'), encodings.join());
    }
    assert.doesNotThrow(() => assertNoMethodOverride('', [FORM], gzipSync(body('a=1&b=2')), ['gzip']));
    assert.doesNotThrow(() => assertNoMethodOverride('', ['application/json'], body('_method=DELETE'), ['zstd']), 'not a form: not read');
    for (const coding of ['zstd', 'constructor', 'gzip']) assert.throws(() => assertNoMethodOverride('', [FORM], body('a=1'), [coding]), refused('METHOD_NOT_ALLOWED'), coding);
  });

  it('a form in UTF-16 or UTF-32 (Tomcat decodes the charset the content type names) is read too', () => {
    const text = 'a=1&_method=DELETE';
    const le16 = Buffer.from(text, 'utf16le');
    const be16 = Buffer.from(le16).swap16();
    const be32 = Buffer.from([...text].flatMap((c) => [0, 0, 0, c.charCodeAt(0)]));
    for (const [charset, bytes] of [['utf-16le', le16], ['utf-16be', be16], ['utf-16', be16], ['utf-32', be32]] as const) {
      assert.throws(() => assertNoMethodOverride('', [`${FORM}; charset=${charset}`], bytes), refused('METHOD_NOT_ALLOWED'), charset);
    }
  });

  it('names percent-encoded as UTF-16 or UTF-32 (Tomcat and Spring decode name bytes in the request charset), with or without a BOM', () => {
    const wide = (name: string, unit: 'le' | 'be' | '32') => [...name].map((c) => (unit === 'le' ? `%${c.charCodeAt(0).toString(16)}%00` : unit === 'be' ? `%00%${c.charCodeAt(0).toString(16)}` : `%00%00%00%${c.charCodeAt(0).toString(16)}`)).join('');
    for (const name of ['_method', 'X-HTTP-Method-Override']) {
      for (const unit of ['le', 'be', '32'] as const) {
        for (const bom of ['', '%FE%FF', '%FF%FE', '%00%00%FE%FF']) {
          const encoded = `${bom}${wide(name, unit)}=${wide('DELETE', unit)}`;
          assert.throws(() => assertNoMethodOverride('', [`${FORM}; charset=UTF-16`], body(encoded)), refused('METHOD_NOT_ALLOWED'), encoded);
          assert.throws(() => assertNoMethodOverride(`?${encoded}`, [], undefined), refused('MALFORMED_URL'), encoded);
        }
      }
    }
    const part = (disposition: string) => body(`--b\r\nContent-Disposition: form-data; ${disposition}\r\n\r\nDELETE\r\n--b--\r\n`);
    for (const d of ["name*=UTF-16BE''%00_%00m%00e%00t%00h%00o%00d", 'name="=?UTF-16BE?B?AF8AbQBlAHQAaABvAGQ=?="']) {
      assert.throws(() => assertNoMethodOverride('', ['multipart/form-data; boundary=b'], part(d)), refused('METHOD_NOT_ALLOWED'), d);
    }
  });

  it('names in stateful charsets (ISO-2022 escape sequences and shift-in/out decode to nothing), and RFC 2231 continued part names', () => {
    for (const [charset, name] of [['ISO-2022-JP', '_me%1B%28%42thod'], ['ISO-2022-JP', '_me\x1b(Bthod'], ['ISO-2022-JP', '%1B%24%42_method'], ['ISO-2022-KR', '_me%0Fthod'], ['ISO-2022-KR', '%1B%24%29C_me%0E%0Fthod']] as const) {
      assert.throws(() => assertNoMethodOverride('', [`${FORM}; charset=${charset}`], body(`${name}=DELETE`)), refused('METHOD_NOT_ALLOWED'), name);
      assert.throws(() => assertNoMethodOverride(`?${name}=DELETE`, [], undefined), refused('MALFORMED_URL'), name);
    }
    const part = (disposition: string) => body(`--b\r\nContent-Disposition: form-data; ${disposition}\r\n\r\nDELETE\r\n--b--\r\n`);
    for (const d of ['name="_me\x1b(Bthod"', 'name*0="_me"; name*1="thod"', "name*0*=utf-8''%5Fme; name*1=thod", 'name*1="thod"; name*0="_me"']) {
      assert.throws(() => assertNoMethodOverride('', ['multipart/form-data; charset=ISO-2022-JP; boundary=b'], part(d)), refused('METHOD_NOT_ALLOWED'), d);
    }
  });

  it("a JSON body's top-level keys are parameters to Laravel: an override among them is refused", () => {
    for (const text of ['{"_method":"DELETE"}', '{"a":1,"_METHOD":"PUT"}', '{"\\u005fmethod":"DELETE"}', '{"x-http-method-override":"DELETE"}']) {
      for (const ct of ['application/json', 'application/vnd.api+json; charset=utf-8', 'text/plain, application/json']) {
        assert.throws(() => assertNoMethodOverride('', [ct], body(text)), refused('METHOD_NOT_ALLOWED'), `${ct} ${text}`);
      }
    }
    for (const text of ['{"messages":[{"content":"_method=DELETE"}]}', '{"nested":{"_method":"DELETE"}}', '[{"_method":"DELETE"}]', '{"method":"tools/call"}', 'not json _method']) {
      assert.doesNotThrow(() => assertNoMethodOverride('', ['application/json'], body(text)), text);
    }
  });

  it('PHP, Rack and qs spellings: NUL tails, brackets, `;` separators, `%u` escapes', () => {
    for (const q of ['?_method%00x=DELETE', '?_method[]=DELETE', '?[_method]=DELETE', '?a=1;_method=DELETE', '?%5Fmethod=DELETE', '?%u005Fmethod=DELETE', '?x.http.method.override=DELETE', '?x_http_method[override=DELETE']) {
      assert.throws(() => assertNoMethodOverride(q, [], undefined), refused('MALFORMED_URL'), q);
    }
  });

  it('a multipart body is read for part names, quoted, escaped, unquoted, RFC 2231 and RFC 2047, with or without a boundary', () => {
    const part = (disposition: string) => body(`--b\r\nContent-Disposition: form-data; ${disposition}\r\n\r\nDELETE\r\n--b--\r\n`);
    for (const d of ['name="_method"', 'name=_method', 'NAME = " _method"', 'name="_meth\\od"', 'name="_method', "name*=utf-8''%5Fmethod", 'name="=?utf-8?B?X21ldGhvZA==?="', 'name="=?utf-8?Q?=5Fmethod?="', 'name="_method[]"', 'name=".method"']) {
      for (const ct of ['multipart/form-data; boundary=b', 'multipart/form-data', 'multipart/mixed; boundary=b', 'Multipart/Form-Data, boundary=b']) {
        assert.throws(() => assertNoMethodOverride('', [ct], part(d)), refused('METHOD_NOT_ALLOWED'), `${ct} ${d}`);
      }
    }
    assert.doesNotThrow(() => assertNoMethodOverride('', ['multipart/form-data; boundary=b'], part('name="title"; filename="_method"')), 'a file called _method is no field');
  });

  it('any query spelling some stack reads as an override is MALFORMED_URL', () => {
    fc.assert(
      fc.property(overrideWire, fc.constantFrom('?', '?a=1&', '?a=1;', '?&'), (wire, pre) => {
        assert.throws(() => assertNoMethodOverride(`${pre}${wire}=DELETE`, [], undefined), refused('MALFORMED_URL'));
      }),
      params,
    );
  });

  it('any form field some stack reads as an override, under any content type some stack reads as a form, is METHOD_NOT_ALLOWED', () => {
    fc.assert(
      fc.property(overrideWire, formContentTypes, fc.constantFrom('', 'a=1&', 'a=1;'), (wire, ct, pre) => {
        assert.throws(() => assertNoMethodOverride('', ct, body(`${pre}${wire}=DELETE`)), refused('METHOD_NOT_ALLOWED'));
      }),
      params,
    );
  });

  it('any multipart part name PHP or Rack reads as an override is METHOD_NOT_ALLOWED', () => {
    const partName = spelling.filter((n) => !n.includes('\0') && [phpKey, rack2Key, rack3Key, qsKey].some((read) => isOverride(read(n))));
    fc.assert(
      fc.property(partName, fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (name, escape) => {
        const quoted = [...name].map((c, i) => (escape[i] || c === '"' || c === '\\' ? `\\${c}` : c)).join('');
        const multipart = body(`--b\r\nContent-Disposition: form-data; name="${quoted}"\r\n\r\nDELETE\r\n--b--\r\n`);
        assert.throws(() => assertNoMethodOverride('', ['multipart/form-data; boundary=b'], multipart), refused('METHOD_NOT_ALLOWED'));
      }),
      params,
    );
  });

  it('ordinary names, and bodies no stack reads as a form, pass', () => {
    const ordinary = fc.stringMatching(/^[a-z][a-z0-9_]{0,12}$/).filter((n) => !n.includes('method'));
    fc.assert(
      fc.property(ordinary, formContentTypes, (name, ct) => {
        assert.doesNotThrow(() => assertNoMethodOverride(`?${name}=1&q=_method`, ct, body(`${name}=_method&x=DELETE`)));
      }),
      params,
    );
    for (const ct of ['application/json', 'text/plain', 'application/json; x=application/x-www-form-urlencoded', 'application/x-www-form-urlencoded-not', 'application/json; boundary="a,b"']) {
      assert.doesNotThrow(() => assertNoMethodOverride('', [ct], body('_method=DELETE')), ct);
    }
  });
});
