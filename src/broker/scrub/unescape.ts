// The escapes honest services wrap text in, undone left to right, streaming, one family per
// decoder: percent-encoding (`%2F`, either case), JSON string escapes (`\n`, `\/`, `\u0026`,
// any subset of characters), or HTML character references (`&#47;`, `&#x2f;`, `&sol;`). One
// family at a time, because a service encodes a value once: a JSON string may hold a literal
// `%99`, which a decoder of every family at once would wrongly turn into a byte. Not nested:
// `%2541` is `%41`. Each decoded byte carries the raw span it came from, so a match maps back
// to what to redact.

/** Receives one decoded byte and the raw span [start, end) it came from. */
export type SymbolSink = (byte: number, start: number, end: number) => void;

// HTML5 named references that stand for one ASCII character (case matters, as in HTML).
const NAMED: Record<string, number> = Object.fromEntries(
  Object.entries({
    '\t': 'Tab', '\n': 'NewLine', '!': 'excl', '"': 'quot QUOT', '#': 'num', $: 'dollar', '%': 'percnt',
    '&': 'amp AMP', "'": 'apos', '(': 'lpar', ')': 'rpar', '*': 'ast midast', '+': 'plus', ',': 'comma',
    '.': 'period', '/': 'sol', ':': 'colon', ';': 'semi', '<': 'lt LT', '=': 'equals', '>': 'gt GT',
    '?': 'quest', '@': 'commat', '[': 'lsqb lbrack', '\\': 'bsol', ']': 'rsqb rbrack', '^': 'Hat',
    _: 'lowbar UnderBar', '`': 'grave', '{': 'lcub lbrace', '|': 'verbar vert VerticalLine', '}': 'rcub rbrace',
  }).flatMap(([char, names]) => names.split(' ').map((n) => [n, char.charCodeAt(0)])),
);

/**
 * The longest escape this decoder reads: `&#x0010ffff;` and kin, or the longest named
 * reference (`&VerticalLine;`); longer ones are left as they are.
 */
export const MAX_ESCAPE_BYTES = Math.max(12, ...Object.keys(NAMED).map((name) => name.length + 2));

/** The byte after a backslash -> what it stands for (INVALID: not a simple escape). A table: this runs per escape. */
const JSON_SIMPLE = new Int16Array(256).fill(-2);
for (const [k, v] of [[0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x08], [0x66, 0x0c], [0x6e, 0x0a], [0x72, 0x0d], [0x74, 0x09]]) JSON_SIMPLE[k!] = v!;

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

function isAlnum(b: number): boolean {
  const l = b | 0x20;
  return (b >= 0x30 && b <= 0x39) || (l >= 0x61 && l <= 0x7a);
}

const INCOMPLETE = -1;
const INVALID = -2;

/** A code point as the bytes it is in UTF-8 (a lone surrogate as U+FFFD, as TextEncoder does). */
const encoder = new TextEncoder();
function utf8(cp: number): Uint8Array {
  return encoder.encode(String.fromCodePoint(cp));
}

export type EscapeFamily = 'percent' | 'json' | 'html';
const PERCENT = 0x25;
const INTRODUCER: Record<EscapeFamily, number> = { percent: PERCENT, json: 0x5c, html: 0x26 };

export class Unescaper {
  readonly #sink: SymbolSink;
  readonly #introducer: number;
  readonly #pending = new Uint8Array(MAX_ESCAPE_BYTES);
  #length = 0;
  #start = 0;

  constructor(family: EscapeFamily, sink: SymbolSink) {
    this.#introducer = INTRODUCER[family];
    this.#sink = sink;
  }

  /** Nothing pending. */
  get idle(): boolean {
    return this.#length === 0;
  }

  /** Feeds the raw byte at absolute offset `pos` (offsets arrive in order, without gaps). */
  push(b: number, pos: number): void {
    if (this.#length === 0) {
      if (b === this.#introducer) {
        this.#pending[0] = b;
        this.#length = 1;
        this.#start = pos;
      } else {
        this.#sink(b, pos, pos + 1);
      }
      return;
    }
    this.#pending[this.#length++] = b;
    this.#settle();
  }

  reset(): void {
    this.#length = 0;
    this.#start = 0;
  }

  /** The end of the input: whatever is pending was not an escape. */
  finish(): void {
    while (this.#length > 0) this.#fail();
  }

  #settle(): void {
    const cp = classify(this.#pending, 0, this.#length);
    if (cp === INCOMPLETE) return;
    if (cp === INVALID) return this.#fail();
    const end = this.#start + this.#length;
    this.#length = 0;
    // A percent escape spells a byte (`%C3%A9` is é's two); the others a code point, whose
    // UTF-8 bytes the view reads.
    if (cp < 0x80 || this.#introducer === PERCENT) this.#sink(cp, this.#start, end);
    else for (const byte of utf8(cp)) this.#sink(byte, this.#start, end);
  }

  /** The first pending byte is literal; the rest is read again (it may start an escape). */
  #fail(): void {
    const rest = this.#pending.slice(1, this.#length);
    const start = this.#start;
    this.#length = 0;
    this.#sink(this.#pending[0]!, start, start + 1);
    for (let i = 0; i < rest.length; i++) this.push(rest[i]!, start + 1 + i);
  }
}

/**
 * The escape at data[i] (its introducer) as a decoder reads it: code point * 16 + length in
 * bytes, or negative: INVALID (the decoder passes the introducer on as itself) or INCOMPLETE
 * (data ends first).
 */
export function escapeAt(data: Uint8Array, i: number): number {
  // The two commonest read straight off (the plain scan asks at every escape it reads): a
  // JSON escape of two bytes, and percent-encoding.
  const b = data[i]!;
  if (b === 0x5c && i + 1 < data.length) {
    const simple = JSON_SIMPLE[data[i + 1]!]!;
    if (simple >= 0) return simple * 16 + 2;
  } else if (b === 0x25 && i + 2 < data.length) {
    const hi = hexValue(data[i + 1]!);
    const lo = hexValue(data[i + 2]!);
    if (hi >= 0 && lo >= 0) return ((hi << 4) | lo) * 16 + 3;
  }
  for (let n = 2; n <= MAX_ESCAPE_BYTES; n++) {
    if (i + n > data.length) return INCOMPLETE;
    const cp = classify(data, i, n);
    if (cp !== INCOMPLETE) return cp === INVALID ? INVALID : cp * 16 + n;
  }
  return INVALID;
}

/** The code point the escape p[at, at + n) spells, INCOMPLETE, or INVALID (its first n - 1 bytes were INCOMPLETE). */
function classify(p: Uint8Array, at: number, n: number): number {
  const last = p[at + n - 1]!;
  switch (p[at]) {
    case 0x25: // %HH
      if (hexValue(last) < 0) return INVALID;
      return n === 3 ? (hexValue(p[at + 1]!) << 4) | hexValue(p[at + 2]!) : INCOMPLETE;
    case 0x5c: // \" \\ \/ \b \f \n \r \t \uHHHH
      if (n === 2) return last === 0x75 ? INCOMPLETE : JSON_SIMPLE[last]!;
      if (hexValue(last) < 0) return INVALID;
      if (n < 6) return INCOMPLETE;
      return (hexValue(p[at + 2]!) << 12) | (hexValue(p[at + 3]!) << 8) | (hexValue(p[at + 4]!) << 4) | hexValue(p[at + 5]!);
    default: // &#DDD; &#xHH; &name;
      return reference(p, at, n, last);
  }
}

function reference(p: Uint8Array, at: number, n: number, last: number): number {
  if (n === 2) return last === 0x23 || isAlnum(last) ? INCOMPLETE : INVALID;
  if (p[at + 1] === 0x23) {
    const hex = p[at + 2] === 0x78 || p[at + 2] === 0x58;
    if (n === 3 && hex) return INCOMPLETE;
    const digits = hex ? 3 : 2;
    if (last === 0x3b) {
      if (n - 1 === digits) return INVALID;
      let cp = 0;
      for (let i = digits; i < n - 1; i++) cp = cp * (hex ? 16 : 10) + hexValue(p[at + i]!);
      return cp === 0 || cp > 0x10ffff ? INVALID : cp;
    }
    const ok = hex ? hexValue(last) >= 0 : last >= 0x30 && last <= 0x39;
    return ok && n < MAX_ESCAPE_BYTES ? INCOMPLETE : INVALID;
  }
  if (last === 0x3b) return NAMED[String.fromCharCode(...p.subarray(at + 1, at + n - 1))] ?? INVALID;
  return isAlnum(last) && n < MAX_ESCAPE_BYTES ? INCOMPLETE : INVALID;
}
