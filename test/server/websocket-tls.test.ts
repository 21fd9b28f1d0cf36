// Certificate checks on wss upstreams, as on https ones: a daemon process that trusts the
// test CA (NODE_EXTRA_CA_CERTS) opens a WebSocket to a server whose certificate is valid, and
// refuses one whose certificate is for another name, expired, or from a CA it does not trust.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { makePki } from '../helpers/pki.ts';

async function wssServer(cert: string, key: string): Promise<{ port: number; upgrades: number; close(): Promise<void> }> {
  const https: Server = createServer({ cert, key });
  const wss = new WebSocketServer({ server: https });
  const state = { port: 0, upgrades: 0, close: async () => {} };
  wss.on('connection', (ws) => {
    state.upgrades++;
    ws.send('hello');
  });
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  state.port = (https.address() as AddressInfo).port;
  state.close = async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => https.close(() => resolve()));
  };
  return state;
}

describe('wss upstreams: certificates are checked as for https', () => {
  let v: TempVault;
  let daemon: RunningDaemon;
  let token: string;
  const servers: Record<string, Awaited<ReturnType<typeof wssServer>>> = {};
  let caDir: string;

  before(async () => {
    const pki = makePki();
    caDir = mkdtempSync(join(tmpdir(), 'aivault-ca-'));
    const caFile = join(caDir, 'ca.pem');
    writeFileSync(caFile, pki.ca);
    v = await tempVault(['--key-provider', 'keyfile'], { NODE_EXTRA_CA_CERTS: caFile });
    servers.good = await wssServer(pki.serverCert, pki.serverKey);
    servers.wrongname = await wssServer(pki.wrongNameCert, pki.wrongNameKey);
    servers.expired = await wssServer(pki.expiredCert, pki.expiredKey);
    servers.untrusted = await wssServer(pki.rogueServerCert, pki.rogueServerKey);
    const ok = async (args: string[]) => {
      const r = await v.cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const ref = (await ok(['secrets', 'create', '--name', 'WSS_KEY', '--value', 'wss-key-0123456789'])).trim();
    token = (JSON.parse(await ok(['agent', 'create', 'tls-bot', '--json'])) as { token: string }).token;
    for (const [name, server] of Object.entries(servers)) {
      await ok(['credential', 'create', name, '--provider', name, '--secret-ref', ref, '--auth', 'header', '--header-name', 'x-key', '--host', `127.0.0.1:${server.port}`, '--allow-private-network']);
      await ok(['capability', 'create', `${name}/stream`, '--provider', name, '--credential', name, '--method', 'GET', '--path', '/v1', '--websocket']);
      await ok(['grant', 'tls-bot', `${name}/stream`]);
    }
    daemon = await startDaemon(v, ['--listen', '127.0.0.1:0']);
  });
  after(async () => {
    await daemon?.stop();
    for (const s of Object.values(servers)) await s.close();
    v.cleanup();
    rmSync(caDir, { recursive: true, force: true });
  });

  const open = (provider: string) =>
    new Promise<{ opened: boolean; status?: number; code?: unknown; first?: string }>((resolve) => {
      const ws = new WebSocket(`${daemon.url!.replace(/^http/, 'ws')}/gw/${provider}/v1/stream`, { headers: { authorization: `Bearer ${token}` } });
      ws.once('message', (d) => {
        resolve({ opened: true, first: String(d) });
        ws.close();
      });
      ws.once('unexpected-response', (_req, res) => resolve({ opened: false, status: res.statusCode!, code: res.headers['x-aivault-error'] }));
      ws.once('error', () => resolve({ opened: false }));
    });

  it('a certificate the daemon trusts, for the right name: the session opens (the control case)', async () => {
    assert.deepEqual(await open('good'), { opened: true, first: 'hello' });
    assert.equal(servers.good!.upgrades, 1);
  });

  for (const [kind, what] of [['wrongname', 'a certificate for another name'], ['expired', 'an expired certificate'], ['untrusted', 'a certificate from an untrusted CA']] as const) {
    it(`${what}: refused as UPSTREAM_TLS_ERROR, and no session reaches the server`, async () => {
      assert.deepEqual(await open(kind), { opened: false, status: 502, code: 'UPSTREAM_TLS_ERROR' });
      assert.equal(servers[kind]!.upgrades, 0);
    });
  }
});
