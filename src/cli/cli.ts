// The `aivault` command (started by main.ts). Every failure ends as `error CODE: message` (or JSON with
// --json) on stderr and a documented exit code; see docs/errors.md.

import { CommanderError } from 'commander';
import { AivaultError, EXIT, errorKind } from '../errors.ts';
import { buildProgram } from './program.ts';
import { printError } from './output.ts';

/** Commander echoes offending arguments; strip their values in case one was a secret. */
function usageMessage(err: CommanderError): string {
  return err.message
    .replace(/^error: /, '')
    .replace(/(argument|option) '([^'=\s]*)=[^']*'/g, "$1 '$2=…'")
    .replace(/argument '[^']*'/g, "argument '…'");
}

function toAivaultError(err: unknown): AivaultError {
  if (err instanceof AivaultError) return err;
  if (err instanceof CommanderError) return new AivaultError('INVALID_ARGUMENT', usageMessage(err));
  // Unknown failures are reported by kind only: their messages could carry anything.
  const kind = errorKind(err);
  if (process.env.AIVAULT_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  return new AivaultError('INTERNAL_ERROR', `unexpected ${kind}; rerun with AIVAULT_DEBUG=1 for a stack trace`);
}

export async function main(argv: readonly string[]): Promise<number> {
  process.umask(0o077);
  // `aivault … | head` closes stdout early; that is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.OK);
    throw err;
  });
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv as string[]);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')) {
      return EXIT.OK;
    }
    const error = toAivaultError(err);
    printError(error, argv.includes('--json'));
    return error.exitCode;
  }
}
