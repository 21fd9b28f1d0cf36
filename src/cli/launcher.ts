#!/usr/bin/env node
// The installed `aivault` command (package.json bin), started by whatever `node` is first on
// PATH. On a Node that runs aivault the CLI runs in this process; on an older one (Node 20,
// 22) this process runs the CLI on the Node the package brings (runtime.ts) and stands in for
// it: same arguments, environment and standard streams, its exit status, and the signals a
// supervisor or `kill` sends to this process alone. Nothing here may need more than Node 20.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { bundledNode, MIN_NODE, runsAivault } from './runtime.ts';

/** Signals sent to one process (kill, timeout, a supervisor): passed on to the CLI. */
const PASSED_ON = ['SIGTERM', 'SIGHUP'] as const;
/**
 * Signals the terminal sends to its whole foreground group, so the CLI gets its own: ignored
 * here while it runs, as a shell does while it waits; passing them on would deliver them twice
 * (and a second SIGINT ends `serve` before its shutdown finishes).
 */
const TERMINAL = ['SIGINT', 'SIGQUIT'] as const;

if (runsAivault(process.versions.node)) {
  await import('./main.ts');
} else {
  const node = bundledNode(import.meta.url);
  if ('missing' in node) {
    process.stderr.write(`aivault needs Node ${MIN_NODE.join('.')} or later, and this is Node ${process.versions.node}; ${node.missing}. Install Node 24, or reinstall aivault.\n`);
    process.exit(1);
  }
  const main = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './main.ts' : './main.js', import.meta.url));
  const child = spawn(node.path, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const s of TERMINAL) process.on(s, () => {});
  for (const s of PASSED_ON) process.on(s, () => child.kill(s));
  child.on('error', (err) => {
    process.stderr.write(`aivault could not start ${node.path}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (code !== null) process.exit(code);
    // End the way the CLI ended; a signal this process ignores (SIGPIPE) leaves the shell's 128+n.
    process.exitCode = 128 + (constants.signals[signal!] ?? 0);
    for (const s of [...TERMINAL, ...PASSED_ON]) process.removeAllListeners(s);
    process.kill(process.pid, signal!);
  });
}
