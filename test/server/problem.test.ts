// The SDK reads a refusal back into the AivaultError the daemon raised (code, message, field),
// over a real loopback HTTP server answering with the daemon's own refusal builder; and it
// still reads the `{error: {code, message}}` body a daemon of the previous version answers with.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AivaultError, isAivaultError } from '../../src/errors.ts';
import { errorFromRefusal } from '../../src/problem.ts';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { createOwnerClient } from '../../src/sdk/owner-client.ts';
import { refusal } from '../../src/server/status.ts';

describe('the SDK reads refusals', () => {
  let server: Server;
  let url: string;
  /** What the server answers next: a refusal by the daemon's builder, or a raw legacy body. */
  let answer: { status: number; headers: Record<string, string>; body: string };

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const rejection = async (run: () => Promise<unknown>): Promise<AivaultError> => {
    try {
      await run();
    } catch (err) {
      assert.ok(isAivaultError(err), String(err));
      return err;
    }
    assert.fail('expected a refusal');
  };

  it('a problem document becomes the AivaultError it was built from: code, message = detail, field', async () => {
    answer = refusal(new AivaultError('INVALID_SCOPE', 'workspaceId must be 1-64 lower-case letters', { field: 'workspaceId' }));
    const agent = createAgentClient({ url, token: 'avt_x' });
    const owner = createOwnerClient({ url, ownerId: 'own_x', privateKey: generateKeyPairSync('ed25519').privateKey });
    try {
      for (const err of [await rejection(() => agent.capabilities()), await rejection(() => owner.call('secrets.list'))]) {
        assert.deepEqual([err.code, err.message, err.field, err.exitCode], ['INVALID_SCOPE', 'workspaceId must be 1-64 lower-case letters', 'workspaceId', 2]);
      }
    } finally {
      await agent.close();
      await owner.close();
    }
  });

  it("a previous daemon's {error: {code, message}} still reads as its code and message", async () => {
    answer = { status: 409, headers: { 'content-type': 'application/json', 'x-aivault-error': 'LAST_OWNER' }, body: JSON.stringify({ error: { code: 'LAST_OWNER', message: 'add another owner first' } }) };
    const owner = createOwnerClient({ url, ownerId: 'own_x', privateKey: generateKeyPairSync('ed25519').privateKey });
    try {
      const err = await rejection(() => owner.call('owner.remove', { name: 'x' }));
      assert.deepEqual([err.code, err.message, err.field], ['LAST_OWNER', 'add another owner first', undefined]);
    } finally {
      await owner.close();
    }
  });

  it('the gateway body reads the same; an unknown code (even one named like a prototype member) is INTERNAL_ERROR', () => {
    const gw = refusal(new AivaultError('HOST_REQUIRED', 'name one with host', { field: 'host' }), 'gateway');
    const err = errorFromRefusal(gw.body, gw.headers['x-aivault-error'], 'fallback');
    assert.deepEqual([err.code, err.message, err.field], ['HOST_REQUIRED', 'name one with host', 'host']);
    for (const code of ['constructor', 'NOT_A_CODE']) assert.equal(errorFromRefusal('', code, 'fallback').code, 'INTERNAL_ERROR');
    assert.equal(errorFromRefusal('not json', 'RATE_LIMITED', 'fallback').message, 'fallback');
  });
});
