// `aivault setup …`: the unit systemd itself accepts, and the agent-access steps; input that
// could smuggle directives into a unit file is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { agentAccessSteps, systemdUnit } from '../../src/cli/deployment.ts';
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
    const r = await runCli(['setup', 'systemd', '--daemon-user', 'daemon', '--aivault-bin', process.execPath, '--install', '--unit-dir', dir]);
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
      ['setup', 'systemd', '--daemon-user', 'root'],
      ['setup', 'agent-access', '--agent-user', 'claude', '--vault-dir', '//', '--dry-run'],
    ];
    for (const args of cases) {
      const r = await runCli([...args, '--json']);
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stdout}`);
      assert.equal((JSON.parse(r.stderr) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
    }
  });

  const unit = { daemonUser: 'aivault', socketGroup: 'aivault-agents', vaultDir: '/var/lib/aivault', socketPath: '/run/aivault/aivault.sock', aivaultBin: '/usr/local/bin/aivault' };
  const access = { agentUser: 'claude', socketGroup: 'aivault-agents', daemonUser: 'aivault', vaultDir: '/var/lib/aivault' };
  const refused = (fn: () => unknown, what: string) => assert.throws(fn, (e: { code?: string }) => e.code === 'INVALID_ARGUMENT', what);

  it('refuses users and groups that hold the machine: the separation would be undone', () => {
    for (const name of ['root', 'sudo', 'wheel', 'disk', 'docker', 'shadow']) {
      if (name === 'root') refused(() => systemdUnit({ ...unit, daemonUser: name }), `daemon user ${name}`);
      refused(() => systemdUnit({ ...unit, socketGroup: name }), `socket group ${name}`);
      refused(() => agentAccessSteps({ ...access, daemonUser: name }), `daemon user ${name}`);
      refused(() => agentAccessSteps({ ...access, agentUser: name }), `agent user ${name}`);
      refused(() => agentAccessSteps({ ...access, socketGroup: name }), `socket group ${name}`);
    }
  });

  it('refuses / and system directories as the directories it gives the daemon, however spelled', () => {
    for (const dir of ['/', '/.', '//', '/./', '/etc', '/etc/', '//etc', '/etc/ssh', '/usr', '/usr/local/bin', '/boot', '/var', '/var/lib', '/var/lib/.', '/var/log', '/home', '/root', '/tmp//', '/run']) {
      refused(() => systemdUnit({ ...unit, vaultDir: dir }), `systemd --vault-dir ${dir}`);
      refused(() => agentAccessSteps({ ...access, vaultDir: dir }), `agent-access --vault-dir ${dir}`);
      refused(() => systemdUnit({ ...unit, socketPath: `${dir}/aivault.sock` }), `--socket in ${dir}`);
    }
  });

  it('one spelling per directory: `//`, `/./` and a trailing `/` reach the unit and the steps normalised', () => {
    const lines = systemdUnit({ ...unit, vaultDir: '//srv/./aivault/', socketPath: '//srv//aivault-run/a.sock' }).split('\n');
    for (const line of ['Environment=AIVAULT_DIR=/srv/aivault', 'ReadWritePaths=/srv/aivault', 'ReadWritePaths=/srv/aivault-run']) assert.ok(lines.includes(line), `unit has ${line}`);
    assert.ok(systemdUnit({ ...unit, vaultDir: '/var/lib/aivault/' }).split('\n').includes('StateDirectory=aivault'));
    assert.equal(agentAccessSteps({ ...access, vaultDir: '/var//lib/aivault/.' }).at(-1)!.argv.at(-1), '/var/lib/aivault');
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
