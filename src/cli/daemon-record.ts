// Where a running `aivault serve` listens, recorded in the vault directory (daemon.json, 0600
// like everything there) so `run`, `mcp` and `invoke` find it without AIVAULT_SOCKET or
// AIVAULT_URL. The record is only a hint: it is believed once the daemon answers /v1/health
// on the recorded socket, so one a killed daemon left behind is ignored. A live daemon still
// holds its loopback port, so its recorded URL is its own.

import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { osError } from '../os-errors.ts';

export const RECORD_FILE = 'daemon.json';
const HEALTH_TIMEOUT_MS = 2_000;
const LOOPBACK_URL = /^http:\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost):\d{1,5}$/;

export interface DaemonRecord {
  pid: number;
  socket: string;
  url?: string;
}

/** Writes the record atomically (a reader never sees half of it), readable by this user only. */
export function writeDaemonRecord(dir: string, record: DaemonRecord): void {
  const path = join(dir, RECORD_FILE);
  const temporary = `${path}.${process.getBuiltinModule('node:crypto').randomBytes(6).toString('hex')}`;
  try {
    writeFileSync(temporary, JSON.stringify(record) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw osError(err, path, 'file');
  }
}

/** Removes the record if it is still this daemon's (another may have started since). */
export function removeDaemonRecord(dir: string, pid = process.pid): void {
  if (readDaemonRecord(dir)?.pid === pid) rmSync(join(dir, RECORD_FILE), { force: true });
}

function readDaemonRecord(dir: string): DaemonRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(join(dir, RECORD_FILE), 'utf8'));
  } catch {
    return undefined; // none, unreadable, or torn: no hint
  }
  const r = parsed as Partial<Record<keyof DaemonRecord, unknown>>;
  if (typeof r !== 'object' || r === null || !Number.isInteger(r.pid)) return undefined;
  if (typeof r.socket !== 'string' || !isAbsolute(r.socket)) return undefined;
  if (r.url !== undefined && !(typeof r.url === 'string' && LOOPBACK_URL.test(r.url))) return undefined;
  return { pid: r.pid as number, socket: r.socket, ...(r.url !== undefined ? { url: r.url as string } : {}) };
}

/** Whether a daemon answers /v1/health at the socket path or loopback URL, within a short time. */
export function daemonAnswers(at: { socket: string } | { url: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const where = 'socket' in at ? { socketPath: at.socket } : (({ hostname, port }) => ({ host: hostname.replace(/^\[|\]$/g, ''), port }))(new URL(at.url));
    // node:http as CommonJS: importing it as ESM builds its facade, which loads Node's own
    // undici (13 ms) for every command that merely looks for a daemon.
    const req = process.getBuiltinModule('node:http').request({ ...where, path: '/v1/health', method: 'GET', timeout: HEALTH_TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text = (text + c).slice(0, 64)));
      res.on('end', () => resolve(res.statusCode === 200 && text === '{"ok":true}'));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The recorded daemon of the vault in `dir`, if it answers on its socket. */
export async function findDaemon(dir: string): Promise<DaemonRecord | undefined> {
  const record = readDaemonRecord(dir);
  return record && (await daemonAnswers({ socket: record.socket })) ? record : undefined;
}
