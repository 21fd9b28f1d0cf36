#!/usr/bin/env node
// The `aivault` entry point. Node's compile cache is turned on before the command tree loads,
// so a run skips most parsing and compiling (about half of every command's start-up), in a
// directory only this user can write (compile-cache.ts). Then the command runs (cli.ts).

import { enableCompileCache } from 'node:module';
import { privateCompileCache } from './compile-cache.ts';

process.umask(0o077);
const cache = privateCompileCache();
if (cache) enableCompileCache(cache);
if (process.argv[2] === 'completion' && process.argv[3] === 'names') {
  // Run on every TAB: names only, without the command tree.
  await (await import('./completion-names.ts')).printCompletionNames(process.argv);
} else {
  const { main } = await import('./cli.ts');
  process.exitCode = await main(process.argv);
}
