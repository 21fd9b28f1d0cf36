// Runs shell text as written (bash: its quoting, pipes, `$(…)`, redirections, variables) with
// `aivault` bound to the real CLI running in this process (cli.ts's main): a shell function
// hands the arguments, environment, working directory and stdin to a loopback socket, and
// gets the output and exit status back. One CLI process costs ~0.3 s to start; this costs a
// few small processes (curl, cat) per call, so hundreds of examples run in seconds.
//
// What stands in for what a person does beside the command:
// - typing at a prompt: a command that reads stdin with nothing piped in gets `typed`;
// - `aivault serve`: it answers once listening and keeps serving (a second terminal) until
//   the next `aivault serve` or the end of the script, when it gets SIGTERM;
// - `secrets ingest`: the value is POSTed to the URL it prints, as a person would.

import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { main } from '../../src/cli/cli.ts';
import type { Example } from './doc-examples.ts';

export interface Call {
  id: string;
  args: string[];
  exit: number;
  stdout: string;
  stderr: string;
}

export interface Failure {
  where: string;
  text: string;
  status: number;
  /** The last aivault call the line made, if any. */
  call?: Call;
}

// Builtins only (printf, read, /dev/tcp): a call spawns no process on the shell's side.
const PRELUDE = String.raw`
set -o pipefail
aivault() {
  local p="$AV_TMP/c.$BASHPID.$RANDOM$RANDOM" n out err code
  printf '%s\0' "$@" > "$p.args"
  compgen -e > "$p.names"
  while IFS= read -r n; do printf '%s=%s\0' "$n" "${'${!n}'}"; done < "$p.names" > "$p.env"
  printf '%s' "$PWD" > "$p.cwd"
  if [ -p /dev/stdin ] || [ -f /dev/stdin ]; then IFS= read -r -d '' out; printf '%s' "$out" > "$p.stdin"; else printf %s "$AV_TYPED" > "$p.stdin"; fi
  printf %s "$p" > "$AV_TMP/last"
  { exec 3<>"/dev/tcp/127.0.0.1/$AV_PORT"; } 2>/dev/null || { echo "aivault bridge: no answer" >&2; return 70; }
  printf '%s\n' "$p" >&3
  read -r code <&3
  exec 3<&-
  IFS= read -r -d '' out < "$p.stdout"; printf '%s' "$out"
  IFS= read -r -d '' err < "$p.stderr"; printf '%s' "$err" >&2
  return "$code"
}
__check() { [ "$1" = 0 ] || printf '%s\t%s\t%s\n' "$1" "$2" "$(< "$AV_TMP/last")" >> "$AV_TMP/failures"; }
`;

/** Process-wide state a command reads or sets, swapped in for one call and put back after. */
function withProcess<T>(env: NodeJS.ProcessEnv, cwd: string, stdin: Buffer, out: Writable, err: Writable, fn: () => Promise<T>): Promise<T> {
  const saved = { env: { ...process.env }, cwd: process.cwd() };
  const streams = { stdin: Readable.from([stdin]), stdout: out, stderr: err } as const;
  const own = Object.fromEntries(Object.keys(streams).map((name) => [name, Object.getOwnPropertyDescriptor(process, name)!]));
  for (const [name, stream] of Object.entries(streams)) Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => stream });
  // In place: os.homedir(), child processes and native code read the real environment.
  replaceEnv(env);
  process.chdir(cwd);
  process.exitCode = undefined;
  return fn().finally(() => {
    for (const [name, descriptor] of Object.entries(own)) Object.defineProperty(process, name, descriptor);
    replaceEnv(saved.env);
    process.chdir(saved.cwd);
    process.exitCode = undefined;
  });
}

function replaceEnv(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  Object.assign(process.env, env);
}

function collector(chunks: Buffer[], onText?: (text: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      chunks.push(b);
      onText?.(Buffer.concat(chunks).toString('utf8'));
      done();
    },
  });
}

function parseEnv(raw: Buffer): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const entry of raw.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** POSTs `value` to a `secrets ingest` URL once the command has printed it. */
function answerIngest(text: string, value: string, done: { sent: boolean }): void {
  const m = /POST the value to (\S+) with header x-ingest-token: (\S+)/.exec(text) ?? /"url":"([^"]+)","token":"([^"]+)"/.exec(text);
  if (!m || done.sent) return;
  done.sent = true;
  const req = request(m[1]!, { method: 'POST', headers: { 'x-ingest-token': m[2]! } });
  req.on('response', (res) => res.resume()).on('error', () => {});
  req.end(value);
}

export class ShellBridge {
  readonly calls: Call[] = [];
  #server: Server;
  #daemons: Array<Promise<number>> = [];
  #queue: Promise<void> = Promise.resolve();

  readonly typed: string;

  private constructor(server: Server, typed: string) {
    this.#server = server;
    this.typed = typed;
  }

  static async start(typed: string): Promise<ShellBridge> {
    const server = createServer();
    const bridge = new ShellBridge(server, typed);
    server.on('connection', (conn) => {
      let line = '';
      conn.on('error', () => {});
      conn.on('data', (d: Buffer) => {
        line += d;
        if (!line.endsWith('\n')) return;
        // One call at a time: process.stdout, env and cwd are the process's own.
        bridge.#queue = bridge.#queue.then(() => bridge.#run(line.trim())).then(
          (exit) => {
            conn.end(`${exit}\n`);
          },
          (err: unknown) => {
            conn.end(`70\n${String(err)}`);
          },
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return bridge;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async #run(p: string): Promise<number> {
    const args = readFileSync(`${p}.args`, 'utf8').split('\0').slice(0, -1);
    const env = parseEnv(readFileSync(`${p}.env`));
    const cwd = readFileSync(`${p}.cwd`, 'utf8');
    const stdin = readFileSync(`${p}.stdin`);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const serve = args.includes('serve') && !args.includes('--help');
    if (serve) await this.stopDaemons();
    let listening!: () => void;
    const ready = new Promise<void>((resolve) => (listening = resolve));
    const ingest = { sent: false };
    const stdout = collector(out, (text) => {
      if (serve && text.includes('"listening"')) listening();
      answerIngest(text, this.typed, ingest);
    });
    const stderr = collector(err, (text) => answerIngest(text, this.typed, ingest));
    const running = withProcess(env, cwd, stdin, stdout, stderr, () => main(['node', 'aivault', ...args]));
    let exit: number;
    if (serve) {
      // Running until stopped: it answers for as long as the script goes on.
      exit = await Promise.race([ready.then(() => 0), running]);
      if (exit === 0) this.#daemons.push(running);
    } else {
      exit = await running;
    }
    const call = { id: p, args, exit, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
    this.calls.push(call);
    writeFileSync(`${p}.stdout`, Buffer.concat(out));
    writeFileSync(`${p}.stderr`, Buffer.concat(err));
    return exit;
  }

  /** SIGTERM to the daemons `aivault serve` started, as a person's Ctrl-C; waits for them to stop. */
  async stopDaemons(): Promise<void> {
    if (this.#daemons.length === 0) return;
    process.emit('SIGTERM');
    await Promise.all(this.#daemons.splice(0));
  }

  /**
   * Runs `lines` in one bash, in order, as one script (variables carry over), each checked
   * on its own: every line that exits non-zero is a failure, with the last call it made.
   */
  async script(lines: readonly Example[], opts: { cwd: string; env: NodeJS.ProcessEnv; tmp: string }): Promise<Failure[]> {
    const body = lines.map((l, i) => `: > "$AV_TMP/last"\n${l.text}\n__check $? ${i}`).join('\n');
    const failuresFile = join(opts.tmp, 'failures');
    rmSync(failuresFile, { force: true });
    const child = spawn('bash', ['-c', `${PRELUDE}\n${body}`], {
      cwd: opts.cwd,
      env: { ...opts.env, AV_TMP: opts.tmp, AV_PORT: String(this.port), AV_TYPED: this.typed },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const status = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    await this.stopDaemons();
    if (status !== 0) throw new Error(`the script itself failed (${status}): ${stderr.slice(-2000)}`);
    let failed: string[] = [];
    try {
      failed = readFileSync(failuresFile, 'utf8').split('\n').filter(Boolean);
    } catch {
      // no failures file: nothing failed
    }
    return failed.map((entry) => {
      const [code, i, last] = entry.split('\t');
      const line = lines[Number(i)]!;
      const call = this.calls.find((c) => c.id === last);
      return { where: line.where, text: line.text, status: Number(code), ...(call ? { call } : {}) };
    });
  }

  async close(): Promise<void> {
    await this.stopDaemons();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
