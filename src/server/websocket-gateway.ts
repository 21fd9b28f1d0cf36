// WebSocket passthrough on the gateway: `GET /gw/PROVIDER/<path>` with `Upgrade: websocket`.
// The upgrade is admitted exactly like an invoke (agent token, grant, capability allows
// WebSockets, host/path allow-lists, scope, rate, approval) and audited before anything is
// sent; the upstream upgrade carries the credential; then messages are relayed both ways,
// every server message scrubbed of the injected secrets (and the capability's block list)
// before the agent sees it. The agent's own messages go upstream as they are. While the
// session is open, what admitted it is watched (session-watch.ts): once the agent, its grant
// or the capability no longer admits it, the session ends with 1008.

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import type { WebSocketPlan } from '../broker/broker.ts';
import type { Scrubber } from '../broker/scrub/scrubber.ts';
import type { Services } from '../services.ts';
import { upstreamError } from '../broker/upstream.ts';
import { AivaultError, errorKind } from '../errors.ts';
import { checkedLookup } from '../policy/dns.ts';
import { portOf } from '../policy/hosts.ts';
import { readCapped } from '../read-capped.ts';
import { chooseGatewayCapability, forwardedHeaders, gatewayToken, parseGatewayTarget } from './gateway-route.ts';
import { assertNotFromWebPage } from './origin.ts';
import { requestTarget } from './request-target.ts';
import { refusal } from './status.ts';
import type { Admission } from './limits.ts';
import { SessionWatch } from './session-watch.ts';

/** Past this much unsent data towards one side, reading from the other side pauses. */
const HIGH_WATER = 4 * 1024 * 1024;
/** Close codes an endpoint may not send (RFC 6455 §7.4.1), or that are not ours to relay. */
const UNSENDABLE = new Set([1004, 1005, 1006, 1015]);
const MAX_REJECTION_BODY = 64 * 1024;
/** How long ws may take to complete the client's handshake before the session is given up. */
const UPGRADE_TIMEOUT_MS = 5_000;
/** RFC 6455 §4.1: a base64-encoded 16-byte value. */
const HANDSHAKE_KEY = /^[+/0-9A-Za-z]{22}==$/;

/** Closes both sides of a session; a peer that does not answer the close handshake is cut off. */
function closeBoth(client: WebSocket, upstream: WebSocket, code: number, reason: string): void {
  client.close(code, reason);
  upstream.close(code === 1008 ? 1000 : code);
  setTimeout(() => {
    client.terminate();
    upstream.terminate();
  }, 1000).unref();
}

/** Writes a plain HTTP refusal on an upgrade socket that has not switched protocols. */
function refuse(socket: Duplex, err: AivaultError, extra: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const { status, headers: base, body } = refusal(err, 'gateway');
  const headers = { ...base, 'content-length': String(Buffer.byteLength(body)), connection: 'close', ...extra };
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`);
}

function closeCode(code: number): number {
  if (UNSENDABLE.has(code) || code < 1000 || (code > 1014 && code < 3000) || code > 4999) return 1011;
  return code;
}

/** A close reason fits in 123 bytes of UTF-8; a scrubbed one may have grown. */
function closeReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

/** The subprotocols the agent offered, passed on to the upstream. */
function offeredProtocols(req: IncomingMessage): string[] {
  const h = req.headers['sec-websocket-protocol'];
  return typeof h === 'string' ? h.split(',').map((p) => p.trim()).filter(Boolean) : [];
}

/** Connects to the upstream with the plan's credential; settles once it opened or refused. */
function connectUpstream(plan: WebSocketPlan, protocols: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const upstream = new WebSocket(plan.url, protocols, {
      headers: plan.headers,
      perMessageDeflate: false,
      maxPayload: plan.maxServerMessageBytes,
      handshakeTimeout: plan.connectTimeoutMs,
      followRedirects: false,
      // Resolved and checked once, and connected to what was checked (no rebinding window).
      lookup: checkedLookup({ allowPrivateNetwork: plan.allowPrivateNetwork, port: portOf(plan.url.port, plan.url.protocol) }) as never,
      ...(plan.tls ?? {}),
    });
    // Held until the relay listens: a server that speaks first would otherwise speak to no one.
    upstream.once('open', () => {
      upstream.pause();
      resolve(upstream);
    });
    upstream.once('unexpected-response', (_req, res) => {
      // The upstream answered the upgrade with a plain response: its status, never its body (it may echo the credential).
      void readCapped(res, MAX_REJECTION_BODY).catch(() => undefined);
      upstream.terminate();
      reject(Object.assign(new AivaultError('UPSTREAM_ERROR', `the upstream refused the WebSocket upgrade with HTTP ${res.statusCode}`), { upstreamStatus: res.statusCode }));
    });
    upstream.once('error', (err) => reject(err instanceof AivaultError ? err : upstreamError(err)));
  });
}

export interface UpgradeHandler {
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every relayed session (1001 going away), e.g. on shutdown. */
  closeAll(): void;
}

export function createUpgradeHandler({ vault, agents, broker, reads }: Services, log: Logger, admission: Admission): UpgradeHandler {
  const sessions = new Set<{ client: WebSocket; upstream: WebSocket }>();
  const watch = new SessionWatch(() => vault.storage.generation(), log);

  const relay = (client: WebSocket, upstream: WebSocket, plan: WebSocketPlan, agentId: string, release: () => void): void => {
    const session = { client, upstream };
    sessions.add(session);
    let bytesIn = 0;
    let bytesOut = 0;
    let error: string | undefined;
    const started = performance.now();

    // Sends towards one side, pausing the other side's reading while this one is backed up.
    const sender = (from: WebSocket, to: WebSocket, count: (n: number) => void) => (data: Buffer, binary: boolean) => {
      if (to.readyState !== WebSocket.OPEN) return;
      count(data.length);
      to.send(data, { binary }, () => {
        if (from.isPaused && to.bufferedAmount < HIGH_WATER / 2) from.resume();
      });
      if (to.bufferedAmount > HIGH_WATER) from.pause();
    };
    const toUpstream = sender(client, upstream, (n) => (bytesIn += n));
    // Server messages are scrubbed as one stream (a secret split over two messages is found),
    // each sent whole once it is safe; text frames as bytes too, since a valid UTF-8 pattern
    // only ever matches whole characters.
    // While the upstream is paused (the agent reads slowly) it is not quiet: no timed release.
    const toClient = plan.scrubber.messages(sender(upstream, client, (n) => (bytesOut += n)), { busy: () => upstream.isPaused }, () => {
      error ??= 'INTERNAL_ERROR';
      closeBoth(client, upstream, 1011, 'the answer could not be scrubbed');
    });
    const widen = (wider: Scrubber) => toClient.widen(wider);
    // Widened since the upgrade, before any later request of anyone goes upstream; and by
    // the session watch when a change comes from another process.
    plan.attach(widen);
    const bytes = (data: RawData) => (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));
    client.on('message', (data: RawData, isBinary: boolean) => toUpstream(bytes(data), isBinary));
    upstream.on('message', (data: RawData, isBinary: boolean) => {
      if (client.readyState === WebSocket.OPEN) toClient.push(bytes(data), isBinary);
    });
    upstream.resume();
    const unwatch = watch.add({
      plan,
      generation: plan.generation,
      expiresAt: plan.expiresAt,
      end: (reason) => {
        // Nothing more is relayed either way, held messages included.
        error ??= reason.code;
        toClient.stop();
        log.info({ route: 'gateway-ws', agent: agentId, capability: plan.planned.capability, code: reason.code }, 'websocket no longer admitted');
        closeBoth(client, upstream, 1008, `no longer admitted: ${reason.code}`);
      },
      // Held messages are read again for the wider set too, before any is released.
      rescrub: widen,
    });

    const end = () => {
      if (!sessions.delete(session)) return;
      unwatch();
      release();
      plan.finish({ bytesIn, bytesOut, status: 101, ...(error ? { error } : {}) });
      log.info({ route: 'gateway-ws', agent: agentId, capability: plan.planned.capability, bytesIn, bytesOut, ms: Math.round(performance.now() - started) }, 'websocket closed');
    };
    client.on('close', (code, reason) => {
      toClient.stop();
      if (upstream.readyState === WebSocket.OPEN) upstream.close(closeCode(code), closeReason(reason.toString('utf8')));
      else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
      end();
    });
    upstream.on('close', (code, reason) => {
      toClient.flush();
      if (client.readyState === WebSocket.OPEN) client.close(closeCode(code), closeReason(toClient.current.scrubText(reason.toString('utf8'))));
      else if (client.readyState === WebSocket.CONNECTING) client.terminate();
      end();
    });
    // A protocol error or an oversized message on one side ends both; the agent is told why.
    client.on('error', () => {
      error ??= 'CLIENT_ERROR';
      upstream.terminate();
    });
    upstream.on('error', (err) => {
      const tooBig = (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      error ??= tooBig ? 'RESPONSE_TOO_LARGE' : upstreamError(err).code;
      toClient.stop();
      if (client.readyState === WebSocket.OPEN) client.close(tooBig ? 1009 : 1011, tooBig ? 'upstream message larger than the capability allows' : 'upstream error');
      else client.terminate();
    });
  };

  const handle = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    socket.on('error', () => socket.destroy());
    let plan: WebSocketPlan | undefined;
    let release: (() => void) | undefined;
    let upstream: WebSocket | undefined;
    // Until the relay owns the session, every way out ends here exactly once: the agent's slot
    // back, the upstream closed, the audit record finished. The client going away at any point
    // (a half-closed socket ws destroys without calling back included) is one of those ways.
    let settled = false;
    const abandon = (code: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(upgradeTimer);
      upstream?.terminate();
      plan?.finish({ bytesIn: 0, bytesOut: 0, error: code });
      release?.();
    };
    let upgradeTimer: NodeJS.Timeout | undefined;
    const gone = new AbortController();
    socket.once('close', () => {
      gone.abort();
      abandon('CLIENT_GONE');
    });
    try {
      const url = requestTarget(req);
      assertNotFromWebPage(req);
      if (!url.pathname.startsWith('/gw/')) throw new AivaultError('INVALID_ARGUMENT', 'WebSocket upgrades are served on the gateway only (/gw/PROVIDER/…)');
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') throw new AivaultError('INVALID_ARGUMENT', 'only GET upgrades to websocket are served');
      // The client's half of the handshake is checked before anything is admitted or sent.
      if (!HANDSHAKE_KEY.test(String(req.headers['sec-websocket-key'] ?? '')) || req.headers['sec-websocket-version'] !== '13') {
        throw new AivaultError('INVALID_ARGUMENT', 'a WebSocket upgrade needs a valid Sec-WebSocket-Key and Sec-WebSocket-Version: 13');
      }
      const target = parseGatewayTarget(req.url ?? '/');
      // A token is checked from the headers alone: no unverified slot is needed.
      const at = await reads.snapshot();
      const agent = await agents.authenticate(gatewayToken(req), at);
      if (settled) return;
      // The session holds one of its agent's in-flight slots for as long as it is open.
      release = admission.agent(agent.id);
      const capability = await chooseGatewayCapability(broker, agent, target, 'GET', at, true);
      // The client's handshake headers are its own hop's; ws sets the upstream's.
      const headers = forwardedHeaders(req, (name) => name.startsWith('sec-websocket-'));
      const opened = await broker.openWebSocket({ capability, method: 'GET', path: target.path, query: target.query, headers }, { agent, signal: gone.signal, at });
      plan = opened;
      if (settled) return void opened.finish({ bytesIn: 0, bytesOut: 0, error: 'CLIENT_GONE' });
      const connected = await connectUpstream(opened, offeredProtocols(req));
      upstream = connected;
      if (settled || socket.destroyed) return void (connected.terminate(), abandon('CLIENT_GONE'));
      const server = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: opened.maxClientMessageBytes, handleProtocols: () => connected.protocol || false });
      // Should the client's handshake still fail here, the upstream session must not linger.
      server.once('wsClientError', (_err, sock: Duplex) => {
        abandon('CLIENT_HANDSHAKE');
        refuse(sock, new AivaultError('INVALID_ARGUMENT', 'the WebSocket handshake is invalid'));
      });
      // As on an invoke's response: which credential, and the URL as addressed (secrets redacted).
      server.once('headers', (headers: string[]) => headers.push(`x-aivault-credential: ${opened.planned.credential}`, `x-aivault-upstream-url: ${opened.planned.url}`));
      // ws may drop the socket without ever calling back: the session is then given up.
      upgradeTimer = setTimeout(() => {
        abandon('CLIENT_GONE');
        socket.destroy();
      }, UPGRADE_TIMEOUT_MS);
      server.handleUpgrade(req, socket, head, (client) => {
        if (settled) return void client.terminate();
        settled = true;
        clearTimeout(upgradeTimer);
        relay(client, connected, opened, agent.id, release!);
      });
    } catch (err) {
      const e = err instanceof AivaultError ? err : new AivaultError('INTERNAL_ERROR', 'unexpected error');
      if (!(err instanceof AivaultError)) log.error({ kind: errorKind(err) }, 'unexpected error');
      abandon(e.code);
      const upstreamStatus = (err as { upstreamStatus?: number }).upstreamStatus;
      log.info({ route: 'gateway-ws', code: e.code }, 'refused');
      refuse(socket, e, upstreamStatus ? { 'x-aivault-upstream-status': String(upstreamStatus) } : {});
    }
  };

  return {
    handle: (req, socket, head) =>
      void handle(req, socket, head).catch((err: unknown) => {
        log.error({ kind: errorKind(err) }, 'upgrade failed outside its routes');
        socket.destroy();
      }),
    closeAll() {
      for (const { client, upstream } of sessions) closeBoth(client, upstream, 1001, 'aivault is shutting down');
    },
  };
}
