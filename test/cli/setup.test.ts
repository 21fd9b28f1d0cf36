// `aivault setup …`: the unit systemd itself accepts, and the agent-access steps; input that
// could smuggle directives into a unit file is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

describe('aivault setup', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aivault-setup-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('systemd: a hardened unit running serve as its own user, with the socket shared by group', async () => {
    const r = await runCli(['setup', 'systemd', '--daemon-user', 'aivault', '--listen', '127.0.0.1:8787']);
    assert.equal(r.code, 0, r.stderr);
    for (const line of ['User=aivault', 'SupplementaryGroups=aivault-agents', 'Environment=AIVAULT_DIR=/var/lib/aivault', 'ExecStart=/usr/local/bin/aivault serve --socket /run/aivault/aivault.sock --socket-group aivault-agents --listen 127.0.0.1:8787', 'StateDirectoryMode=0700', 'RuntimeDirectoryMode=0711', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'ProtectHome=yes', 'UMask=0077']) {
      assert.ok(r.stdout.split('\n').includes(line), `unit has ${line}`);
    }
  });

  it('systemd --install writes a unit that systemd-analyze verify accepts', { skip: hasSystemdAnalyze ? false : 'systemd-analyze is not installed' }, async () => {
    const r = await runCli(['setup', 'systemd', '--daemon-user', 'root', '--aivault-bin', process.execPath, '--install', '--unit-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const path = join(dir, 'aivault.service');
    assert.equal(statSync(path).mode & 0o777, 0o644);
    const verify = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.match(readFileSync(path, 'utf8'), /^ExecStart=\S+ serve --socket/m);
  });

  it('refuses names, paths and addresses that could inject into the unit', async () => {
    const cases = [
      ['setup', 'systemd', '--daemon-user', 'aivault\nExecStartPre=/bin/sh -c id'],
      ['setup', 'systemd', '--daemon-user', 'aivault', '--vault-dir', '/var/lib/%n'],
      ['setup', 'systemd', '--daemon-user', 'aivault', '--vault-dir', '/var/lib/../../etc'],
      ['setup', 'systemd', '--daemon-user', 'aivault', '--socket', 'relative.sock'],
      ['setup', 'systemd', '--daemon-user', 'aivault', '--listen', '0.0.0.0:8787'],
      ['setup', 'agent-access', '--agent-user', 'aivault', '--dry-run'],
      ['setup', 'agent-access', '--agent-user', 'bad user', '--dry-run'],
    ];
    for (const args of cases) {
      const r = await runCli([...args, '--json']);
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stdout}`);
      assert.equal((JSON.parse(r.stderr) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
    }
  });

  it('agent-access --dry-run prints the steps, idempotent where they can be', async () => {
    const r = await runCli(['setup', 'agent-access', '--agent-user', 'claude', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    const commands = r.stdout.split('\n').filter((l) => l && !l.startsWith('#') && l !== 'set -eu');
    assert.deepEqual(commands, [
      'id -u aivault >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin aivault',
      'getent group aivault-agents >/dev/null 2>&1 || groupadd --system aivault-agents',
      'usermod --append --groups aivault-agents claude',
      'install --directory --mode 0700 --owner aivault --group aivault /var/lib/aivault',
    ]);
    const json = JSON.parse((await runCli(['setup', 'agent-access', '--agent-user', 'claude', '--dry-run', '--json'])).stdout) as { steps: Array<{ argv: string[] }> };
    assert.equal(json.steps.length, 4);
  });
});
