// What asks an upstream's web stack to act on another method, path, host or client than the
// request the allow-lists checked. Rails, Laravel, Symfony, ASP.NET, Express's
// method-override, IIS URL Rewrite, Spring, Envoy, Next.js middleware and load balancers each
// read some of these as the request's real method, path or origin: let through, a GET
// capability could delete, `/v1/public` serve `/admin`, an IP allow-list be passed.

import type { ZlibOptions } from 'node:zlib';
import { AivaultError } from '../errors.ts';

const STEERING = new Set([
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-rewrite-url',
  'x-override-url',
  'x-middleware-subrequest',
  'forwarded',
  'via',
  'max-forwards',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-proxyuser-ip',
  'x-host',
  'x-http-host-override',
]);
const STEERING_PREFIXES = ['x-forwarded-', 'x-original-', 'x-envoy-'];

/** Whether an agent header (lower case) is one of them; a capability names any it needs (registry `allow.overrideHeaders`). */
export function isSteeringHeader(lower: string): boolean {
  return STEERING.has(lower) || STEERING_PREFIXES.some((p) => lower.startsWith(p));
}

/** Query or form parameters frameworks read as the method (Rails/Rack, Laravel, Symfony, Express, ASP.NET): `_method=DELETE`. */
const METHOD_PARAMS = new Set(['_method', 'x_http_method_override', 'x_http_method', 'x_method_override']);

/**
 * Whether some stack reads a (decoded) parameter name as one of them; the union of their
 * readings, so a spelling any of them maps to `_method` is caught:
 * - PHP (`php_register_variable_ex`, main/php_variables.c): the name ends at a NUL (C
 *   string), leading spaces are dropped, then ` ` and `.` become `_`; a `[` with a `]` after
 *   it starts an array index (`_method[]` is `_method`), an unmatched one becomes `_` with
 *   every later ` `, `.` and `[` (PHP 8).
 * - Rack 2 (`normalize_params`: `\A[\[\]]*([^\[\]]+)\]*`): leading `[` and `]` are dropped,
 *   the key ends at the next bracket (`[_method]` is `_method`).
 * - qs (Express's body and query parsers): `_method[]` is an array whose first item
 *   method-override takes; ASP.NET compares `X-HTTP-Method-Override` ignoring case.
 * Case and `-` against `_` are ignored, as is surrounding whitespace: more is refused than
 * any one stack reads, never less.
 */
function isMethodParam(name: string): boolean {
  // Read both as PHP does (the name ends at a NUL) and as a stack that decodes the name's
  // bytes in a wide charset does (Tomcat/Spring, Django with `charset=utf-16`): `%00_%00m…`
  // is `_method` to those, so the NULs are dropped too.
  // Stateful charsets alike: ISO-2022's escape sequences and shift-in/out decode to nothing
  // (`_me%1B%28Bthod` is `_method` in ISO-2022-JP, `_me%0Fthod` in ISO-2022-KR). A byte-order
  // mark before the first name goes too.
  if (!/[\0\x0e\x0f\x1b]/.test(name)) return readsAsMethod(name);
  return readsAsMethod(name.split('\0', 1)[0]!) || readsAsMethod(invisibleDropped(name).replace(/^(?:\xfe\xff|\xff\xfe|\ufeff)+/, ''));
}

/** Text with what wide and stateful charsets add around ASCII removed: NULs, ISO 2022 escape sequences, SO and SI. */
function invisibleDropped(text: string): string {
  return text.replace(/\x1b[\x20-\x2f]*[\x30-\x7e]|[\0\x0e\x0f]/g, '');
}

function readsAsMethod(name: string): boolean {
  const n = name.toLowerCase().replace(/^[\s[\]]+/, '').trimEnd();
  const whole = n.replace(/[-. [\]]/g, '_');
  const key = n.split(/[[\]]/, 1)[0]!.replace(/[-. ]/g, '_');
  return METHOD_PARAMS.has(whole) || METHOD_PARAMS.has(key);
}

/**
 * A name or value as form decoders read it: `+` is a space, `%XX` a byte (Latin-1 here: the
 * names that matter are ASCII) and `%uXXXX` a UTF-16 unit (ASP.NET's `HttpUtility.UrlDecode`).
 * A malformed escape stays as written, as PHP leaves it (Rack refuses the request).
 */
function formDecode(s: string): string {
  return s.replace(/\+/g, ' ').replace(/%u([0-9a-f]{4})|%([0-9a-f]{2})/gi, (_, u: string | undefined, b: string | undefined) => String.fromCharCode(parseInt(u ?? b!, 16)));
}

/**
 * The names in a query string or urlencoded body. Pairs are split at `&` and also at `;`,
 * which Rack 2 (`DEFAULT_SEP`), Python before 3.9.2 (`parse_qsl`) and a PHP configured
 * with `arg_separator.input = "&;"` read as a separator too.
 */
function urlencodedNames(text: string): string[] {
  return text.split(/[&;]/).map((pair) => formDecode(pair.split('=', 1)[0]!));
}

/**
 * What the body is read as. A body is a form when some stack parses it as one: with no
 * content type (Rack's `form_data?` takes a POST without one, or with an empty one, for a
 * form), or when one of the values sent — each cut at every `,` (two headers are joined so,
 * and a stack may read either), then at the first `;` (Rack's `media_type`) or whitespace
 * (PHP's `sapi_read_post_data` cuts at a space; Rack `rstrip`s a tab), trimmed, unquoted and
 * lower-cased — is empty, the urlencoded type or any multipart type (Rack parses
 * `multipart/mixed` and `related` as it does `form-data`; the other subtypes alike, to be
 * safe).
 */
function formKind(contentTypes: readonly string[]): 'urlencoded' | 'multipart' | undefined {
  const types = contentTypes.flatMap((value) => value.split(',')).map((t) => t.trim().split(/[;\s]/, 1)[0]!.replace(/^["']+|["']+$/g, '').toLowerCase());
  if (types.some((t) => t.startsWith('multipart/'))) return 'multipart';
  if (types.length === 0 || types.some((t) => t === '' || t === 'application/x-www-form-urlencoded')) return 'urlencoded';
  return undefined;
}

/** A `name` (or RFC 2231 `name*`) parameter of a part's header: `name` not ending a longer word (`filename`, `username`). */
const PART_NAME = /(?<![\w-])name(\*?)\s*=\s*([^\r\n]*)/gim;

/**
 * Every name a multipart parser could read in the body, read every way one does: quoted
 * (to the closing quote, or to `"`/`;` as Rack's older `name="?([^";]*)"?` reads an
 * unterminated one) with and without backslash escapes; unquoted to `;` (PHP's
 * `php_ap_getword`) or to whitespace; percent-decoded; RFC 2231 `name*=utf-8''%5Fmethod`;
 * RFC 2047 `=?utf-8?B?…?=` (Commons FileUpload's `ParameterParser` decodes both). The
 * whole body is scanned, boundaries or not, so no boundary a parser picks differently hides one.
 */
function multipartNames(text: string): string[] {
  const out: string[] = [];
  for (const [, star, rest] of text.matchAll(PART_NAME)) {
    const values = rest!.startsWith('"')
      ? [/^"((?:[^"\\]|\\.)*)/.exec(rest!)![1]!, rest!.slice(1).split(/[";]/, 1)[0]!]
      : [rest!.split(';', 1)[0]!, rest!.split(/[;\s]/, 1)[0]!];
    for (const v of values) {
      const unescaped = v.replace(/\\(.)/g, '$1');
      out.push(v, unescaped, formDecode(unescaped), rfc2047(unescaped));
      if (star) out.push(formDecode(unescaped.replace(/^[^']*'[^']*'/, '')));
    }
  }
  // RFC 2231 continuations (`name*0="_me"; name*1="thod"`), joined in order as Python's
  // email package (python-multipart, Werkzeug) joins them.
  for (const line of text.split(/\r?\n/)) {
    const pieces = [...line.matchAll(PART_NAME_PIECE)].map(([, index, star, value]) => {
      const raw = value!.startsWith('"') ? value!.slice(1).replace(/"$/, '').replace(/\\(.)/g, '$1') : value!.trim();
      return { index: Number(index), text: star ? formDecode(index === '0' ? raw.replace(/^[^']*'[^']*'/, '') : raw) : raw };
    });
    if (pieces.length > 0) out.push(pieces.sort((a, b) => a.index - b.index).map((p) => p.text).join(''));
  }
  return out;
}

/** One piece of an RFC 2231 continued `name` parameter: `name*N=` or `name*N*=` (percent-encoded). */
const PART_NAME_PIECE = /(?<![\w-])name\*(\d{1,3})(\*?)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;\r\n]*)/gi;

/** RFC 2047 encoded words (`=?charset?B|Q?text?=`) decoded as Latin-1 bytes. */
function rfc2047(s: string): string {
  return s.replace(/=\?[^?]*\?([bq])\?([^?]*)\?=/gi, (_, enc: string, text: string) =>
    enc.toLowerCase() === 'b' ? Buffer.from(text, 'base64').toString('latin1') : text.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (__, h: string) => String.fromCharCode(parseInt(h, 16))));
}

/**
 * The parameter names a form body carries, by every reading of its kind (a multipart body is
 * read as urlencoded too: Rack does so without a boundary). A body holding NUL bytes is read
 * without them as well: that is its ASCII text in UTF-16 or UTF-32, either byte order, which
 * Tomcat and Spring decode when the content type names that charset.
 */
function formNames(kind: 'urlencoded' | 'multipart', body: Uint8Array): string[] {
  const latin1 = bytes(body).toString('latin1');
  const texts = /[\0\x0e\x0f\x1b]/.test(latin1) ? [latin1, invisibleDropped(latin1)] : [latin1];
  return texts.flatMap((text) => (kind === 'multipart' ? [...multipartNames(text), ...urlencodedNames(text)] : urlencodedNames(text)));
}

/** How far a form body is inflated for the check; a body that inflates past it is refused. */
const INFLATED: ZlibOptions = { maxOutputLength: 16 * 1024 * 1024 };
/** zlib when a body needs it (as CommonJS: a one-shot command that sends no form never loads it). */
const zlib = () => process.getBuiltinModule('node:zlib');
const INFLATE = new Map<string, (b: Uint8Array) => Uint8Array>([
  ['gzip', (b) => zlib().gunzipSync(b, INFLATED)],
  ['x-gzip', (b) => zlib().gunzipSync(b, INFLATED)],
  // zlib-wrapped as RFC 9110 says, or raw as some clients send it; decoders accept either.
  [
    'deflate',
    (b) => {
      try {
        return zlib().inflateSync(b, INFLATED);
      } catch {
        return zlib().inflateRawSync(b, INFLATED);
      }
    },
  ],
  ['br', (b) => zlib().brotliDecompressSync(b, INFLATED)],
]);

/**
 * The body as a stack that undoes its Content-Encoding reads it (Express's body-parser
 * inflates gzip, deflate and br; ASP.NET Core's request decompression and Apache's DEFLATE
 * input filter do too). One aivault cannot undo is refused: a stack might read what it cannot.
 */
function inflated(body: Uint8Array, contentEncodings: readonly string[]): Uint8Array {
  const codings = contentEncodings.flatMap((v) => v.split(',')).map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  const refusal = () => new AivaultError('METHOD_NOT_ALLOWED', 'a form body in a content-encoding aivault cannot undo could carry a method override; aivault refuses it');
  let out = body;
  for (const coding of codings.reverse()) {
    const inflate = INFLATE.get(coding);
    if (!inflate) throw refusal();
    try {
      out = inflate(out);
    } catch {
      throw refusal();
    }
  }
  return out;
}

/**
 * Refuses a method override carried as a query parameter (`query`: the target's raw query
 * string, as the upstream receives it), or as a field of a body some stack reads as a form
 * (`contentTypes`: every content-type value sent, under any spelling of the name), read
 * both as sent (PHP and Rack ignore `contentEncodings`) and inflated. Refused even when the grant holds the method asked for: the allow-lists
 * and the audit record name the request's method, and the upstream would act on another.
 */
export function assertNoMethodOverride(query: string, contentTypes: readonly string[], body: Uint8Array | undefined, contentEncodings: readonly string[] = []): void {
  for (const name of urlencodedNames(query.replace(/^\?/, ''))) {
    if (isMethodParam(name)) throw new AivaultError('MALFORMED_URL', `query parameter ${printableName(name)} asks the upstream for another method; aivault refuses it`);
  }
  if (body && body.byteLength > 0 && isJson(contentTypes)) assertNoJsonOverride(body);
  const kind = body && body.byteLength > 0 ? formKind(contentTypes) : undefined;
  if (!kind) return;
  const readings = contentEncodings.length > 0 ? [body!, inflated(body!, contentEncodings)] : [body!];
  for (const name of readings.flatMap((b) => formNames(kind, b))) {
    if (isMethodParam(name)) throw new AivaultError('METHOD_NOT_ALLOWED', `the form field ${printableName(name)} asks the upstream for another method; aivault refuses it`);
  }
}

const printableName = (name: string) => JSON.stringify(name.slice(0, 64));

/** The body's bytes as a Buffer without copying them: the check runs on every request with a body. */
const bytes = (body: Uint8Array) => Buffer.from(body.buffer, body.byteOffset, body.byteLength);

/** Laravel's `isJson()`: a content type naming `/json` or `+json`. */
function isJson(contentTypes: readonly string[]): boolean {
  return contentTypes.some((t) => /[/+]json/i.test(t));
}

/**
 * A JSON body's top-level keys are parameters to Laravel (`Request::createFromBase` makes
 * the JSON its request bag, and Symfony's `getMethod()` reads `_method` from it): so
 * `{"_method":"DELETE"}` is an override. Parsed only when a key could spell one (`method`
 * in any case, or a `\u` escape); a body that is not JSON is no parameter source.
 */
function assertNoJsonOverride(body: Uint8Array): void {
  const text = bytes(body).toString('utf8');
  if (!/method|\\u/i.test(text)) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return;
  for (const name of Object.keys(parsed)) {
    if (isMethodParam(name)) throw new AivaultError('METHOD_NOT_ALLOWED', `the JSON field ${printableName(name)} asks the upstream for another method; aivault refuses it`);
  }
}
