import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, tempVault } from '../helpers/cli.ts';
import { startDaemon } from '../helpers/daemon.ts';

describe('daemon socket and binds', () => {
  it('--socket-group makes the socket 0660 for that group', async () => {
    const v = await tempVault();
    const gid = process.getgid!();
    const d = await startDaemon(v, ['--socket', join(v.dir, 'g.sock'), '--socket-group', String(gid)]);
    try {
      const st = statSync(d.socket!);
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, gid);
    } finally {
      assert.equal(await d.stop(), 0);
      v.cleanup();
    }
  });

  it('refuses a non-loopback bind, and a second daemon on a live socket', async () => {
    const v = await tempVault();
    try {
      const remote = await runCli(['serve', '--socket', join(v.dir, 'r.sock'), '--listen', '0.0.0.0:0'], { env: v.env });
      assert.equal(remote.code, 2);
      assert.match(remote.stderr, /error INVALID_ARGUMENT: refusing to listen on 0\.0\.0\.0/);
      const d = await startDaemon(v, ['--socket', join(v.dir, 'one.sock')]);
      try {
        const second = await runCli(['serve', '--socket', join(v.dir, 'one.sock')], { env: v.env });
        assert.equal(second.code, 4);
        assert.match(second.stderr, /error ADDRESS_IN_USE: a daemon is already serving \S+one\.sock/);
        assert.ok(statSync(d.socket!).isSocket(), "the refused second daemon left the first one's socket alone");
      } finally {
        assert.equal(await d.stop(), 0);
      }
    } finally {
      v.cleanup();
    }
  });
});
