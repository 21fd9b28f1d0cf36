// `aivault serve`: one unlocked vault, one broker, the API on a Unix socket (0600, or
// 0660 for a group) and optionally on loopback TCP. On shutdown it stops accepting,
// lets in-flight invokes finish, then flushes the audit log.

import { chmodSync, chownSync, existsSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AivaultError, errorKind } from '../errors.ts';
import type { Registry } from '../registry/registry.ts';
import type { Vault } from '../vault/vault.ts';
import { composeServices, type Services } from '../services.ts';
import { createUpgradeHandler, type UpgradeHandler } from './websocket-gateway.ts';
import { createApiHandler } from './api.ts';
import { addOwnListener, removeOwnListener } from '../policy/own-listeners.ts';
import { Admission, DEFAULT_SERVER_LIMITS, type ServerLimits } from './limits.ts';
import { checkSocketPath, osError } from '../os-errors.ts';

export interface DaemonOptions {
  vault: Vault;
  registry: Registry;
  log: Logger;
  socketPath?: string;
  /** Group name or id that may use the socket (mode 0660 instead of 0600). */
  socketGroup?: string;
  /** host:port on loopback. */
  listen?: string;
  /** What a connection may cost (see limits.ts); defaults when absent. */
  limits?: ServerLimits;
}

export interface DaemonAddresses {
  socket?: string;
  url?: string;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-f:]+)\]|([^:]+)):(\d{1,5})$/i.exec(listen);
  if (!m) throw new AivaultError('INVALID_ARGUMENT', 'listen takes HOST:PORT, e.g. 127.0.0.1:8787', { field: 'listen' });
  const host = (m[1] ?? m[2])!;
  if (!isLoopback(host)) {
    throw new AivaultError('INVALID_ARGUMENT', `refusing to listen on ${host}: only loopback addresses are served (remote access needs TLS, which this build does not offer yet)`);
  }
  return { host, port: Number(m[3]) };
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid) return Number(gid);
  }
  throw new AivaultError('INVALID_ARGUMENT', `no group named ${group}`);
}

/** Listens, or fails with a coded error naming `what` (address in use, permission denied…). */
function listenOn(server: Server, what: string, at: { path: string } | { port: number; host: string }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(osError(err, what, 'path' in at ? 'socket' : 'address')));
    server.listen(at, () => resolve());
  });
}

/** A socket file left by a daemon that died is removed; one that answers means a daemon is running. */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new AivaultError('ADDRESS_IN_USE', `a daemon is already serving ${path}`);
  try {
    unlinkSync(path);
  } catch (err) {
    throw osError(err, path, 'file');
  }
}

export class Daemon {
  readonly services: Services;
  readonly #options: DaemonOptions;
  readonly #servers: Server[] = [];
  #inflight = 0;
  #drained: (() => void) | undefined;
  /** Set once this daemon listens on the socket: only then is the file its to remove. */
  #ownsSocket = false;
  #upgrades: UpgradeHandler | undefined;
  /** Shared by every listener: one agent's in-flight count whichever socket it comes through. */
  readonly #admission: Admission;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.services = composeServices(options.vault, options.registry);
    this.#admission = new Admission(options.limits ?? DEFAULT_SERVER_LIMITS);
  }

  #server(): Server {
    const limits = this.#admission.limits;
    const handle = createApiHandler(this.services, this.#options.log, this.#admission);
    this.#upgrades ??= createUpgradeHandler(this.services, this.#options.log, this.#admission);
    const upgrades = this.#upgrades;
    const server = createServer({
      headersTimeout: limits.headersTimeoutMs,
      // A backstop to the body deadline the API enforces with its own error code. It bounds
      // receiving the request only: an answer may stream for as long as its capability allows.
      requestTimeout: limits.headersTimeoutMs + limits.bodyTimeoutMs + 5_000,
      keepAliveTimeout: limits.idleTimeoutMs,
      // How often those deadlines are checked (Node's default, 30 s, would let each run long).
      connectionsCheckingInterval: 1_000,
    }, (req, res) => {
      this.#inflight += 1;
      res.on('close', () => {
        this.#inflight -= 1;
        if (this.#inflight === 0) this.#drained?.();
      });
      // The routes answer their own errors; anything that still escapes ends this one
      // request, never the daemon.
      handle(req, res).catch((err: unknown) => {
        this.#options.log.error({ kind: errorKind(err) }, 'request failed outside its routes');
        res.destroy();
      });
    });
    // `Expect: 100-continue` is answered by the API once the sender is known, not before.
    server.on('checkContinue', (req, res) => server.emit('request', req, res));
    server.on('upgrade', (req, socket, head) => upgrades.handle(req, socket, head));
    server.maxConnections = limits.maxConnections;
    this.#servers.push(server);
    return server;
  }

  async start(): Promise<DaemonAddresses> {
    const out: DaemonAddresses = {};
    const { socketPath, listen } = this.#options;
    if (socketPath) {
      checkSocketPath(socketPath);
      await clearStaleSocket(socketPath);
      await listenOn(this.#server(), socketPath, { path: socketPath });
      this.#ownsSocket = true;
      try {
        if (this.#options.socketGroup) {
          chownSync(socketPath, process.getuid?.() ?? 0, groupId(this.#options.socketGroup));
          chmodSync(socketPath, 0o660);
        } else {
          chmodSync(socketPath, 0o600);
        }
      } catch (err) {
        throw osError(err, `${socketPath}${this.#options.socketGroup ? ` (group ${this.#options.socketGroup})` : ''}`, 'file');
      }
      out.socket = socketPath;
    }
    if (listen) {
      const { host, port } = parseListen(listen);
      const server = this.#server();
      await listenOn(server, listen, { port, host });
      const address = server.address() as AddressInfo;
      addOwnListener(address.address, address.port);
      server.once('close', () => removeOwnListener(address.address, address.port));
      out.url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    }
    return out;
  }

  /** Stops accepting, waits for in-flight requests (up to `graceMs`), then closes everything. */
  async shutdown(graceMs = 30_000): Promise<void> {
    for (const server of this.#servers) server.close();
    if (this.#inflight > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        setTimeout(resolve, graceMs).unref();
      });
    }
    this.#upgrades?.closeAll();
    for (const server of this.#servers) server.closeAllConnections();
    await this.services.close();
    await this.#options.vault.close();
    if (this.#ownsSocket && this.#options.socketPath && existsSync(this.#options.socketPath)) unlinkSync(this.#options.socketPath);
  }
}
