// `npm test`'s runner: node --test over the test files (all, or those given), two at a time,
// with Node's compile cache on for the runner and every process it starts, in the directory
// the CLI itself uses (only this user can write it: src/cli/compile-cache.ts). Most of the
// suite's time is processes starting, each parsing the same sources; with the cache, only the
// first parses them.

import { spawnSync } from 'node:child_process';
import { privateCompileCache } from '../src/cli/compile-cache.ts';

const cache = privateCompileCache();
// Options for node --test pass through; the files are those given, or every test file.
const options = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...options, ...(files.length > 0 ? files : ['test/**/*.test.ts'])], {
  stdio: 'inherit',
  env: { ...process.env, ...(cache ? { NODE_COMPILE_CACHE: cache } : {}) },
});
process.exitCode = run.status ?? 1;
