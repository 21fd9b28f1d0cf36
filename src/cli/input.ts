// Reading secret values: from a flag, a file, stdin or a hidden prompt. Exactly one
// source; one trailing newline is dropped (what `echo` and editors add).

import { readFile } from 'node:fs/promises';
import { AivaultError } from '../errors.ts';
import { readCapped } from '../read-capped.ts';
import { MAX_SECRET_BYTES } from '../vault/values.ts';
import { isInteractive, readHidden } from './prompt.ts';

export interface ValueOptions {
  value?: string;
  valueStdin?: boolean;
  valueFile?: string;
}

function dropTrailingNewline(buf: Buffer): Buffer {
  if (buf.at(-1) === 0x0a) buf = buf.subarray(0, buf.at(-2) === 0x0d ? -2 : -1);
  return buf;
}

export async function readStdin(limit: number): Promise<Buffer> {
  const data = await readCapped(process.stdin, limit);
  if (!data) throw new AivaultError('SECRET_TOO_LARGE', `stdin holds more than ${limit} bytes`);
  return data;
}

export async function readSecretValue(opts: ValueOptions): Promise<Buffer> {
  const sources = [opts.value !== undefined, opts.valueStdin === true, opts.valueFile !== undefined].filter(Boolean).length;
  if (sources > 1) throw new AivaultError('INVALID_ARGUMENT', 'give the value one way: --value, --value-stdin or --value-file');
  if (opts.value !== undefined) return Buffer.from(opts.value, 'utf8');
  if (opts.valueStdin) return dropTrailingNewline(await readStdin(MAX_SECRET_BYTES + 2));
  if (opts.valueFile !== undefined) {
    let data: Buffer;
    try {
      data = await readFile(opts.valueFile);
    } catch (err) {
      throw new AivaultError('INVALID_ARGUMENT', `cannot read --value-file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return dropTrailingNewline(data);
  }
  if (isInteractive()) return Buffer.from(await readHidden('Secret value: '), 'utf8');
  throw new AivaultError('INVALID_ARGUMENT', 'no value: pass --value, --value-stdin or --value-file');
}
