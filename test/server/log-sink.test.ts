// The daemon's log goes to stderr; whoever reads stderr must not be able to stop it serving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';

describe('serve: its log', () => {
  let v: TempVault;
  let d: RunningDaemon;
  before(async () => {
    v = await tempVault();
    d = await startDaemon(v, []);
  });
  after(async () => {
    d.process.stderr!.resume();
    await d.stop();
    v.cleanup();
  });

  it('keeps serving while nothing reads its stderr (a terminal paused with Ctrl-S, a full pipe): a synchronous log froze it', async () => {
    // Not read from now on: the pipe fills after 64 KiB of lines (a refusal logs one of ~200 bytes).
    d.process.stderr!.pause();
    const dispatcher = new Agent({ connect: { socketPath: d.socket! } });
    try {
      for (let i = 0; i < 1500; i++) {
        const res = await request('http://aivault/v1/invoke', { method: 'POST', headers: { authorization: 'Bearer avt_not-a-token', 'content-type': 'application/json' }, body: '{}', dispatcher, headersTimeout: 5000, bodyTimeout: 5000 });
        await res.body.dump();
        assert.equal(res.statusCode, 401, `request ${i}`);
      }
    } finally {
      await dispatcher.close();
    }
  });
});
