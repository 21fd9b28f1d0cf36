// `aivault serve` where it cannot listen: each failure a person can fix has its own code and
// names the address or path; and the record of where a running daemon listens.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AivaultError } from '../../src/errors.ts';
import { osError } from '../../src/os-errors.ts';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon } from '../helpers/daemon.ts';

describe('serve: where it cannot listen', () => {
  let v: TempVault;
  before(async () => (v = await tempVault()));
  after(() => v.cleanup());

  it('a busy port is ADDRESS_IN_USE (exit 4) naming the address, not an internal error', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const address = `127.0.0.1:${(busy.address() as AddressInfo).port}`;
    try {
      const r = await v.cli(['serve', '--listen', address], { timeoutMs: 20_000 });
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, new RegExp(`error ADDRESS_IN_USE: ${address.replace(/\./g, '\\.')} is already in use`));
      assert.equal(existsSync(join(v.dir, 'daemon.json')), false, 'nothing recorded');
      assert.equal(existsSync(join(v.dir, 'aivault.sock')), false, 'the socket it did open is removed');
    } finally {
      busy.close();
    }
  });

  it('a socket path too long for a Unix socket is PATH_TOO_LONG naming it', async () => {
    const path = join(v.dir, `${'s'.repeat(120)}.sock`);
    const r = await v.cli(['serve', '--socket', path], { timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /error PATH_TOO_LONG: the socket path \/\S+\.sock is \d+ bytes; a Unix socket path may hold at most 10[37]/);
  });

  it('a socket in a directory that does not exist is INVALID_ARGUMENT naming the directory', async () => {
    const r = await v.cli(['serve', '--socket', join(v.dir, 'nowhere', 'a.sock')], { timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /error INVALID_ARGUMENT: cannot create \S+a\.sock: \S+nowhere does not exist/);
  });

  it('the OS errors a person can fix map to codes that name the thing; others pass through', () => {
    const os = (code: string) => Object.assign(new Error(code), { code });
    const cases: Array<[string, string, 'address' | 'socket' | 'file', string, RegExp]> = [
      ['EACCES', '127.0.0.1:80', 'address', 'PERMISSION_DENIED', /not allowed to listen on 127\.0\.0\.1:80/],
      ['EACCES', '/tmp', 'file', 'PERMISSION_DENIED', /not allowed to create \/tmp/],
      ['EROFS', '/tmp/x', 'file', 'PERMISSION_DENIED', /read-only file system/],
      ['EADDRNOTAVAIL', '[::1]:8787', 'address', 'ADDRESS_UNAVAILABLE', /\[::1\]:8787 is not an address of this machine/],
      ['ENOSPC', '/v/daemon.json', 'file', 'DISK_FULL', /no space left to write \/v\/daemon\.json/],
      ['EDQUOT', '/v/aivault.sock', 'socket', 'DISK_FULL', /\/v\/aivault\.sock/],
      ['EINVAL', '/v/a.sock', 'socket', 'PATH_TOO_LONG', /\/v\/a\.sock/],
    ];
    for (const [errno, what, kind, code, message] of cases) {
      const mapped = osError(os(errno), what, kind);
      assert.ok(mapped instanceof AivaultError, errno);
      assert.equal(mapped.code, code, errno);
      assert.match(mapped.message, message);
    }
    const other = os('ECONNRESET');
    assert.equal(osError(other, 'x', 'address'), other);
  });
});

describe('serve: the record of where it listens', () => {
  let v: TempVault;
  before(async () => (v = await tempVault()));
  after(() => v.cleanup());

  it('is written 0600 in the vault directory while the daemon runs, and removed when it stops', async () => {
    const d = await startDaemon(v, ['--listen', '127.0.0.1:0']);
    const path = join(v.dir, 'daemon.json');
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { pid: d.process.pid, socket: d.socket, url: d.url });
    } finally {
      assert.equal(await d.stop(), 0);
    }
    assert.equal(existsSync(path), false);
  });
});
