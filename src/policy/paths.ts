// Agent-supplied paths are checked as written, byte for byte, and refused when a server
// could read them differently than we do: we never "fix" a path and forward the fix.

import { AivaultError } from '../errors.ts';

export const MAX_PATH_LENGTH = 4096;

// RFC 3986 pchar (unreserved, sub-delims, ":" "@") and "/"; "%" handled separately.
const PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

function malformed(why: string): AivaultError {
  return new AivaultError('MALFORMED_PATH', `the path is refused: ${why}`);
}

/** Throws MALFORMED_PATH unless `path` is an absolute path with one unambiguous reading. */
export function assertCleanPath(path: string): void {
  if (path.length === 0 || path[0] !== '/') throw malformed('it must start with "/"');
  if (path.length > MAX_PATH_LENGTH) throw malformed(`it is longer than ${MAX_PATH_LENGTH} characters`);
  if (path.startsWith('//')) throw malformed('it starts with "//" (a network-path reference)');
  if (path.includes('?') || path.includes('#')) throw malformed('it contains "?" or "#"; pass query parameters separately, fragments never');
  if (path.includes('\\')) throw malformed('it contains a backslash');
  if (!PATH_CHAR.test(path)) throw malformed('it contains characters that must be percent-encoded (controls, spaces, non-ASCII, quotes, brackets)');
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw malformed('it contains a "%" that does not start a percent-encoding');
    const byte = parseInt(hex, 16);
    const ch = String.fromCharCode(byte);
    if (ch === '/' || ch === '\\') throw malformed('it contains an encoded separator (%2F or %5C)');
    if (ch === '%') throw malformed('it contains an encoded "%" (double encoding)');
    if (byte < 0x20 || byte === 0x7f) throw malformed('it contains an encoded control character');
    if (UNRESERVED.test(ch)) throw malformed(`it percent-encodes "${ch}", which needs no encoding (ambiguous)`);
  }
  const segments = path.split('/').slice(1);
  segments.forEach((segment, i) => {
    // Servlet containers and Spring drop a segment's `;` parameters (even `%3B` ones) before
    // they resolve dot segments, so `/v1/users/..;/admin` is `/v1/admin` there: a segment is
    // judged by what comes before its first `;`.
    const bare = segment.split(/;|%3b/i, 1)[0]!;
    if (bare === '.' || bare === '..') throw malformed('it contains a dot segment (path parameters after ";" are ignored by some servers)');
    if (bare === '' && i !== segments.length - 1) throw malformed('it contains an empty segment ("//", or one with only ";" parameters)');
    if (segment.includes('%')) assertDecodedSegment(segment);
  });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A segment as servers that decode and normalise read it: its escapes must be UTF-8 (an
 * overlong `%C0%AE` is a dot to old decoders), and its NFKC form (what Unicode-normalising
 * routers and Windows best-fit mappings see: `．`, `‥`, `／`) must hold no separator and
 * not be a dot segment.
 */
function assertDecodedSegment(segment: string): void {
  let decoded: string;
  try {
    decoded = UTF8.decode(Buffer.from(segment.replace(/%([0-9A-Fa-f]{2})|[^%]+/g, (m, hex: string | undefined) => (hex ? String.fromCharCode(parseInt(hex, 16)) : m)), 'latin1'));
  } catch {
    throw malformed('its percent-encodings are not UTF-8 (overlong or broken sequences)');
  }
  const read = decoded.normalize('NFKC');
  if (/[/\\]/.test(read)) throw malformed('a segment decodes to a "/" or "\\" once Unicode-normalised');
  const bare = read.split(';', 1)[0]!;
  if (bare === '.' || bare === '..' || bare === '') throw malformed('a segment decodes to a dot or empty segment once Unicode-normalised');
}

/**
 * Whether `prefix` admits `path`, matching whole segments: `/v1/users` admits `/v1/users`
 * and `/v1/users/42`, never `/v1/users-admin`. A `*` prefix segment matches exactly one
 * non-empty segment. Both must already be clean.
 */
export function pathMatchesPrefix(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  const want = prefix.split('/').slice(1);
  const have = path.split('/').slice(1);
  if (have.length < want.length) return false;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const h = have[i]!;
    if (w === '*' ? h.length === 0 : w !== h) return false;
  }
  return true;
}
