// Whatever request target a sender writes, the daemon answers it or closes that one
// connection: it never dies of it. (An attacker without a token once stopped the daemon
// with `GET //`.)
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

/** Sends raw bytes over TCP and returns what came back before the connection closed. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.end(text));
    let got = '';
    sock.on('data', (d) => (got += d));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
}

describe('request targets the daemon cannot route', () => {
  let v: TempVault;
  let d: RunningDaemon;
  let port: number;

  before(async () => {
    v = await tempVault();
    d = await startDaemon(v, ['--listen', '127.0.0.1:0']);
    port = Number(new URL(d.url!).port);
  });
  after(async () => {
    await d.stop();
    v.cleanup();
  });

  const targets = ['//', '//evil.example/v1/health', '//v1/invoke', 'http://evil.example/v1/health', '*', '/%zz/..', '/gw//', '/\\\\evil'];
  for (const target of targets) {
    it(`${target}: a refusal with a code, and the daemon still serves`, async () => {
      const answer = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      // Node may refuse some targets itself (400 without a body); a code of ours otherwise.
      assert.match(answer, /^HTTP\/1\.1 4\d\d /, answer);
      const upgrade = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      assert.match(upgrade, /^HTTP\/1\.1 4\d\d /, upgrade);
      const health = await fetch(`${d.url}/v1/health`);
      assert.equal(health.status, 200);
      assert.equal(d.process.exitCode, null, d.log());
    });
  }
});
