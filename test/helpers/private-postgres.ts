// A PostgreSQL server of the test's own (initdb into a temp dir, its own port), for tests
// that stop and restart the server: the machine's shared server must keep serving the
// other tests running at the same time.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface PrivatePostgres {
  url: string;
  start(): void;
  stop(mode?: 'fast' | 'immediate'): void;
  destroy(): void;
}

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root).sort().at(-1);
  return version ? join(root, version, 'bin') : undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Why a private server cannot be made here, or undefined when it can. */
export function privatePostgresUnavailable(): string | undefined {
  if (!binDir()) return 'PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)';
  if (userInfo().uid !== 0 && userInfo().username !== 'postgres') return 'initdb must run as the postgres user, which needs root here';
  return undefined;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir()!;
  const dir = mkdtempSync(join(tmpdir(), 'aivault-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const asPostgres = userInfo().uid === 0;
  if (asPostgres) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()));
  const run = (tool: string, args: string[]) =>
    execFileSync(asPostgres ? 'runuser' : join(bin, tool), asPostgres ? ['-u', 'postgres', '--', join(bin, tool), ...args] : args, { stdio: 'pipe', timeout: 60_000 });
  run('initdb', ['-D', data, '--auth=trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const pgCtl = (args: string[]) => run('pg_ctl', ['-D', data, '-w', '-t', '30', ...args]);
  const start = () => pgCtl(['-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop: (mode = 'fast') => pgCtl(['-m', mode, 'stop']),
    destroy: () => {
      try {
        pgCtl(['-m', 'immediate', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
