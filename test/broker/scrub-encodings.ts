// What the scrubber's tests throw at it, written independently of src/broker/scrub: the
// encodings honest services produce (each applied to a whole string, as a service encodes a
// whole value) and decoders that look for a secret in anything the agent could be shown.
// Shared by the property tests (npm test) and the long fuzz run (npm run fuzz:scrub).

import fc from 'fast-check';

const hex2 = (n: number, upper = false) => (upper ? n.toString(16).toUpperCase() : n.toString(16)).padStart(2, '0');
const u4 = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
const bytesOf = (s: string) => Buffer.from(s, 'utf8');
/** A fixed, seed-driven choice of which characters an encoder escapes. */
const pick = (seed: number, i: number) => ((seed * 2654435761 + i * 40503) >>> 7) % 3 === 0;

const HTML_NAMED: Record<string, string> = { '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos', '/': 'sol', '=': 'equals', '+': 'plus', '%': 'percnt' };

function wrap(text: string, width: number, eol: string): string {
  return text.replace(new RegExp(`(.{${width}})`, 'g'), `$1${eol}`);
}

/** name -> encoder of a whole string; `seed` varies which characters a partial encoder touches. */
export const ENCODINGS: Record<string, (s: string, seed: number) => string> = {
  raw: (s) => s,
  upper: (s) => s.toUpperCase(),
  lower: (s) => s.toLowerCase(),
  hex: (s) => bytesOf(s).toString('hex'),
  HEX: (s) => bytesOf(s).toString('hex').toUpperCase(),
  percentAll: (s) => [...bytesOf(s)].map((b) => `%${hex2(b, true)}`).join(''),
  percentAllLower: (s) => [...bytesOf(s)].map((b) => `%${hex2(b)}`).join(''),
  uriComponent: (s) => encodeURIComponent(s),
  form: (s) => new URLSearchParams({ v: s }).toString().slice(2),
  // Some characters encoded; `%` itself always (or the result could not be decoded).
  percentSome: (s, seed) => [...bytesOf(s)].map((b, i) => (b === 0x25 || b > 0x7e || pick(seed, i) ? `%${hex2(b, i % 2 === 0)}` : String.fromCharCode(b))).join(''),
  json: (s) => JSON.stringify(s),
  jsonSlash: (s) => JSON.stringify(s).replace(/\//g, '\\/'),
  jsonUnicodeSome: (s, seed) => `"${[...s].map((c, i) => (c === '"' || c === '\\' || c < ' ' || pick(seed, i) ? u4(c) : c)).join('')}"`,
  jsonUnicodeAll: (s) => `"${[...s].map(u4).join('')}"`,
  // Go's encoding/json: <, > and & as \u003c, \u003e, \u0026.
  jsonGo: (s) => JSON.stringify(s).replace(/[<>&]/g, u4),
  htmlDecimal: (s, seed) => [...s].map((c, i) => (c === '&' || pick(seed, i) ? `&#${c.codePointAt(0)};` : c)).join(''),
  htmlHex: (s, seed) => [...s].map((c, i) => (c === '&' || pick(seed, i) ? `&#x${c.codePointAt(0)!.toString(16)};` : c)).join(''),
  htmlNamed: (s) => s.replace(/[&<>"'/=+%]/g, (c) => `&${HTML_NAMED[c]};`),
  base64: (s) => bytesOf(s).toString('base64'),
  base64NoPad: (s) => bytesOf(s).toString('base64').replace(/=+$/, ''),
  base64url: (s) => bytesOf(s).toString('base64url'),
  base64Wrapped76: (s) => wrap(bytesOf(s).toString('base64'), 76, '\r\n'),
  base64Wrapped64: (s) => wrap(bytesOf(s).toString('base64'), 64, '\n'),
  base64InJson: (s) => JSON.stringify(wrap(bytesOf(s).toString('base64'), 60, '\n')).replace(/\//g, '\\/'),
  uriComponentInJson: (s) => JSON.stringify({ url: `https://x.example/cb?v=${encodeURIComponent(s)}` }),
  // A body declared charset=utf-16 (bytes read back as latin1 text, as the tests feed bytes).
  utf16le: (s) => Buffer.from(s, 'utf16le').toString('latin1'),
  utf16be: (s) => Buffer.from(s, 'utf16le').swap16().toString('latin1'),
  // Server-sent events: the text split over events at seed-chosen points.
  sse: (s, seed) => {
    const cut: number[] = [];
    for (let i = 1; i < s.length; i++) if (pick(seed, i)) cut.push(i);
    const parts = [0, ...cut, s.length].slice(1).map((end, k, ends) => s.slice(k === 0 ? 0 : ends[k - 1]!, end));
    return parts.map((p) => `data: ${p}\n\n`).join('');
  },
  // One event whose data spans lines, kept as text in a JSON answer (a request log): each
  // line break a `\n` escape, each followed by a `data:` field name.
  sseInJson: (s, seed) => JSON.stringify(`${ENCODINGS.sse!(s, seed).replace(/\n\n(?!$)/g, '\n')}`),
};

/** Printable ASCII with the characters encoders treat specially over-represented. */
const SPECIAL = [...'+/=&%  "\\<>?#;:-_.~'];
const secretChar = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom(...SPECIAL) },
);
export const secretArb = fc.array(secretChar, { minLength: 8, maxLength: 48 }).map((a) => a.join(''));
export const textArb = fc.array(fc.oneof(secretChar, fc.constantFrom('\n', 'a', 'Z', '0', '9')), { maxLength: 40 }).map((a) => a.join(''));

/** Random cuts of a buffer into pieces (at least one). */
export function cutAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(buf.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  if (prev < buf.length || out.length === 0) out.push(buf.subarray(prev));
  return out;
}

// ---- independent decoders: every view of the output in which a secret could be read ----

const NAMED_BACK = Object.fromEntries(Object.entries(HTML_NAMED).map(([c, n]) => [n, c]));

function percentDecode(text: string, plusIsSpace: boolean): string {
  const t = plusIsSpace ? text.replace(/\+/g, ' ') : text;
  return Buffer.from(t.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

function jsonDecode(text: string): string {
  const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
  return text.replace(/\\(u[0-9a-fA-F]{4}|["\\/bfnrt])/g, (_m, e: string) => (e.length === 5 ? String.fromCharCode(parseInt(e.slice(1), 16)) : simple[e]!));
}

function htmlDecode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (m, r: string) => {
    if (r.startsWith('#x')) return String.fromCodePoint(parseInt(r.slice(2), 16));
    if (r.startsWith('#')) return String.fromCodePoint(parseInt(r.slice(1), 10));
    return NAMED_BACK[r] ?? m;
  });
}

function hexViews(text: string): string[] {
  const out: string[] = [];
  for (const run of text.match(/[0-9a-fA-F]{16,}/g) ?? []) {
    for (const parity of [0, 1]) {
      const r = run.slice(parity);
      out.push(Buffer.from(r.slice(0, r.length - (r.length % 2)), 'hex').toString('latin1'));
    }
  }
  return out;
}

function base64Views(text: string): string[] {
  const out: string[] = [];
  const joined = text.replace(/\\n|\\r|[\r\n\t ]/g, '').replace(/\\\//g, '/');
  for (const run of joined.match(/[A-Za-z0-9+/_-]{8,}/g) ?? []) {
    const std = run.replace(/-/g, '+').replace(/_/g, '/');
    for (let off = 0; off < 4; off++) out.push(Buffer.from(std.slice(off), 'base64').toString('latin1'));
  }
  return out;
}

function sseJoined(text: string): string {
  return text.replace(/\r?\n(data: ?)?/g, '');
}

/** Every decoded view of `output`; a secret readable in any of them has leaked. */
export function views(output: string): string[] {
  // NULs dropped: what a reader of UTF-16 text sees of ASCII.
  const base = [output, sseJoined(output), output.replace(/\0/g, '')];
  const out: string[] = [];
  for (const b of base) {
    out.push(b, percentDecode(b, false), percentDecode(b, true), jsonDecode(b), htmlDecode(b));
    out.push(...hexViews(b), ...base64Views(b));
  }
  return out;
}

/** Where `secret` can still be read in `output`, or undefined. */
export function leak(output: string, secret: string): string | undefined {
  const lower = secret.toLowerCase();
  const latin = Buffer.from(secret, 'utf8').toString('latin1');
  for (const v of views(output)) {
    if (v.toLowerCase().includes(lower) || v.includes(latin) || v.replace(/\+/g, ' ').toLowerCase().includes(lower.replace(/\+/g, ' '))) return v.slice(0, 200);
  }
  return undefined;
}
