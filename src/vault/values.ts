// What a secret value may be, apart from the vault that stores it: commands check a value
// (or size what they read) before they open the vault, without loading it.

import { AivaultError } from '../errors.ts';

/** Largest secret value accepted: room for a PEM certificate chain, not for a file store. */
export const MAX_SECRET_BYTES = 64 * 1024;
/**
 * The shortest value the response scrubber can protect (src/broker/scrub): a shorter one would
 * match ordinary text, and its base64 has too few characters of its own to look for. Shorter
 * values need the owner's acknowledgement (`allowShort`), and are not scrubbed.
 */
export const MIN_SECRET_LENGTH = 8;

/** A value shorter than the scrubber protects needs the owner's explicit acknowledgement. */
function assertProtectable(value: Uint8Array, allowShort: boolean, name: string): void {
  if (value.byteLength < MIN_SECRET_LENGTH && !allowShort) {
    throw new AivaultError('SECRET_TOO_SHORT', `${name}: a value under ${MIN_SECRET_LENGTH} bytes cannot be scrubbed from responses; store it with allowShort only if an agent may learn it`);
  }
}

export function assertValue(value: Uint8Array): void {
  if (value.byteLength === 0) throw new AivaultError('SECRET_EMPTY', 'a secret value cannot be empty');
  if (value.byteLength > MAX_SECRET_BYTES) {
    throw new AivaultError('SECRET_TOO_LARGE', `a secret value may hold at most ${MAX_SECRET_BYTES} bytes`);
  }
}

/** Every rule a value meets before it is stored: not empty, not too large, scrubbable unless the owner accepted otherwise. */
export function assertStorableValue(value: Uint8Array, allowShort: boolean, name: string): void {
  assertValue(value);
  assertProtectable(value, allowShort, name);
}
