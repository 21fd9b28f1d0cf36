// `aivault serve`: the daemon. Agents then reach capabilities with only an agent token.

import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { DEFAULT_APPROVAL_TIMEOUT_MS } from '../../policy/approvals.ts';
import { AivaultError } from '../../errors.ts';
import { DEFAULT_SERVER_LIMITS, MAX_UNVERIFIED_PER_SIGNER, type ServerLimits } from '../../server/limits.ts';
import { readPassphrase, vaultDir, type GlobalOptions } from '../context.ts';
import { RECORD_FILE, removeDaemonRecord, writeDaemonRecord } from '../daemon-record.ts';

interface ServeOptions extends GlobalOptions {
  socket?: string;
  socketGroup?: string;
  listen?: string;
  noSocket?: boolean;
  auditDurability: 'full' | 'crash-safe';
  approvalTimeout: string;
  approvalCommand?: string;
  headersTimeout: string;
  bodyTimeout: string;
  idleTimeout: string;
  maxConnections: string;
  maxUnauthenticated: string;
  maxInFlightPerAgent: string;
  maxBufferedBodyBytes: string;
}

const D = DEFAULT_SERVER_LIMITS;

/** What a connection may cost, from the options: seconds (0.1 to 3600), counts (1 to 100000) and bytes. */
function serverLimits(o: ServeOptions): ServerLimits {
  const seconds = (flag: string, text: string) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0.1 || n > 3600) throw new AivaultError('INVALID_ARGUMENT', `${flag} takes a number of seconds from 0.1 to 3600`);
    return Math.round(n * 1000);
  };
  const count = (flag: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new AivaultError('INVALID_ARGUMENT', `${flag} takes a whole number from 1 to 100000`);
    return n;
  };
  const bytes = (flag: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1024 || n > 2 ** 40) throw new AivaultError('INVALID_ARGUMENT', `${flag} takes a whole number of bytes from 1024 to 2^40`);
    return n;
  };
  return {
    headersTimeoutMs: seconds('--headers-timeout', o.headersTimeout),
    bodyTimeoutMs: seconds('--body-timeout', o.bodyTimeout),
    idleTimeoutMs: seconds('--idle-timeout', o.idleTimeout),
    maxConnections: count('--max-connections', o.maxConnections),
    maxUnauthenticated: count('--max-unauthenticated', o.maxUnauthenticated),
    maxInFlightPerAgent: count('--max-in-flight-per-agent', o.maxInFlightPerAgent),
    maxBufferedBodyBytes: bytes('--max-buffered-body-bytes', o.maxBufferedBodyBytes),
  };
}

/** The most log text the daemon holds for a stderr reader that has stopped reading. */
const LOG_BACKLOG_BYTES = 16 * 1024 * 1024;

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the broker daemon: agents invoke capabilities over a Unix socket (and optionally loopback HTTP) with an agent token')
    .option('--socket <path>', 'Unix socket path (default: aivault.sock in the vault directory; mode 0600)')
    .option('--socket-group <group>', 'let this group use the socket (mode 0660)')
    .option('--listen <host:port>', 'also serve on loopback TCP, e.g. 127.0.0.1:8787')
    .addOption(new Option('--audit-durability <mode>', 'full: each audit record is on disk before its request leaves; crash-safe: in the write-ahead log (survives a killed daemon, not a power loss)').choices(['full', 'crash-safe']).default('full'))
    .option('--approval-timeout <seconds>', 'how long an invoke waits for owner approval (grants with --approve)', String(DEFAULT_APPROVAL_TIMEOUT_MS / 1000))
    .option('--approval-command <command>', 'run for each pending approval (sh -c), with the approval as JSON on stdin and AIVAULT_APPROVAL_* variables')
    .option('--headers-timeout <seconds>', "time for a request's headers to arrive (a connection that sends nothing is closed)", String(D.headersTimeoutMs / 1000))
    .option('--body-timeout <seconds>', "time for a request's whole body to arrive once its headers have: past it, 408 REQUEST_TIMEOUT and the connection is closed", String(D.bodyTimeoutMs / 1000))
    .option('--idle-timeout <seconds>', 'how long a kept-alive connection may wait for its next request', String(D.idleTimeoutMs / 1000))
    .option('--max-connections <n>', 'open connections per listening socket; more are refused', String(D.maxConnections))
    .option('--max-unauthenticated <n>', `signed requests whose body is read before their signature is checked, at once (at most ${MAX_UNVERIFIED_PER_SIGNER} per signer id): more get 503 DAEMON_BUSY; a token's request needs none`, String(D.maxUnauthenticated))
    .option('--max-buffered-body-bytes <n>', 'request-body bytes the daemon buffers at once, all requests together (checked from Content-Length, and as a chunked body arrives): more get 503 DAEMON_BUSY', String(D.maxBufferedBodyBytes))
    .option('--max-in-flight-per-agent <n>', "one agent's requests and WebSocket sessions open at once: more get 429 TOO_MANY_IN_FLIGHT", String(D.maxInFlightPerAgent))
    .addHelpText('after', `\nWhile it runs, ${RECORD_FILE} in the vault directory (mode 0600) says where it listens, so run,\nmcp and invoke find it with no AIVAULT_SOCKET or AIVAULT_URL; it is removed when the daemon stops.`)
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<ServeOptions>();
      const limits = serverLimits(o);
      const [{ pino }, { Vault }, { Daemon }, { approvalNotifier }, { builtinRegistry }] = await Promise.all([
        import('pino'),
        import('../../vault/vault.ts'),
        import('../../server/daemon.ts'),
        import('../../server/approval-notify.ts'),
        import('../../registry/registry.ts'),
      ]);
      // Written asynchronously: a synchronous destination (batched: up to 8 % less CPU a request)
      // froze the daemon whenever its stderr was not read (a terminal paused with Ctrl-S, a full
      // pipe). Lines waiting for a reader past LOG_BACKLOG_BYTES are dropped, not held.
      const log = pino({ name: 'aivault', base: { pid: process.pid } }, pino.destination({ dest: 2, maxLength: LOG_BACKLOG_BYTES }));
      const dir = vaultDir(o);
      const vault = await Vault.open({ dir, readPassphrase });
      await vault.setAuditDurability(o.auditDurability);
      const timeoutSeconds = Number(o.approvalTimeout);
      if (!Number.isFinite(timeoutSeconds)) throw new AivaultError('INVALID_ARGUMENT', '--approval-timeout takes a number of seconds');
      const daemon = new Daemon({
        vault,
        registry: await builtinRegistry(),
        log,
        socketPath: o.socket ?? join(dir, 'aivault.sock'),
        ...(o.socketGroup ? { socketGroup: o.socketGroup } : {}),
        ...(o.listen ? { listen: o.listen } : {}),
        limits,
      });
      daemon.services.approvals.configure({ timeoutMs: timeoutSeconds * 1000, ...(o.approvalCommand ? { notify: approvalNotifier(o.approvalCommand, log) } : {}) });
      let addresses;
      try {
        addresses = await daemon.start();
        // So that run, mcp and invoke find this daemon with no address given.
        writeDaemonRecord(dir, { pid: process.pid, socket: addresses.socket!, ...(addresses.url ? { url: addresses.url } : {}) });
      } catch (err) {
        await daemon.shutdown(0);
        throw err;
      }
      // Handlers first, announcement second: whoever reads the announcement may signal at once.
      const stopped = new Promise<void>((resolve) => {
        // Kept, not once: a signal can arrive twice (systemd signals the launcher's whole
        // cgroup; a terminal, the process group), and a second must not kill a shutdown under way.
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          log.info({ signal }, 'shutting down: finishing in-flight requests');
          resolve();
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
      });
      log.info(addresses, 'listening');
      process.stdout.write(JSON.stringify({ listening: addresses }) + '\n');
      await stopped;
      removeDaemonRecord(dir);
      await daemon.shutdown();
      log.info('stopped; audit log flushed');
    });
}
