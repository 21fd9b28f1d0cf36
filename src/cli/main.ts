#!/usr/bin/env node
// The `aivault` entry point. Node's compile cache is turned on before the command tree loads,
// so a run skips most parsing and compiling (about half of every command's start-up), in a
// directory only this user can write (compile-cache.ts). Then the command runs (cli.ts).

import { enableCompileCache } from 'node:module';
import { privateCompileCache } from './compile-cache.ts';

// The daemon's heap is set by two V8 flags, which V8 takes only at start, so `serve` starts
// itself again with them (same pid, nothing else changes); a flag already given is kept.
// Measured with bench:gateway at 32 connections (BENCH_NODE_FLAGS), against V8's defaults:
// - a young generation of 2 × 4 MiB (V8 lets it grow to 2 × 64 MiB here): scavenge pauses
//   median 22 -> 2 ms and longest 31 -> 5 ms, RSS 304 -> 205 MiB, at the same throughput and
//   CPU per request (8 MiB: 4 and 10 ms; 16 MiB: 7 and 16 ms);
// - the old generation grown by 1.5 × what a full collection leaves live (V8 otherwise chose
//   up to 4 ×, holding about 100 MiB of a 26 MiB live heap): RSS under load 213 -> 149 MiB
//   for CPU per request 791 -> 822 µs (.prof-tmp A/B, daemons side by side in alternating
//   rounds); 1.3 × (V8's own factor when it saves memory) gave 145 MiB for +15 % CPU, as full
//   collections on the daemon's one CPU came every second.
const SERVE_V8_FLAGS = ['--max-semi-space-size=4', '--heap-growing-percent=50'];
const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
const missing = SERVE_V8_FLAGS.filter((f) => !given.includes(f.slice(0, f.indexOf('='))));
if (process.argv[2] === 'serve' && process.platform !== 'win32' && missing.length > 0) {
  try {
    process.execve!(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)], process.env);
  } catch {
    // Not allowed here (a sandbox): serve as is, with V8's defaults.
  }
}
process.umask(0o077);
const cache = privateCompileCache();
if (cache) enableCompileCache(cache);
if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  // Without the command tree.
  process.stdout.write(`${(await import('../version.ts')).VERSION}\n`);
} else if (process.argv.length === 3 && (process.argv[2] === '--help' || process.argv[2] === '-h')) {
  // Rendered from the tree when it changes (scripts/cli-reference.ts), not at every run.
  process.stdout.write((await import('./top-help.ts')).TOP_HELP);
} else if (process.argv[2] === 'completion' && process.argv[3] === 'names') {
  // Run on every TAB: names only, without the command tree.
  await (await import('./completion-names.ts')).printCompletionNames(process.argv);
} else {
  const { main } = await import('./cli.ts');
  process.exitCode = await main(process.argv);
}
