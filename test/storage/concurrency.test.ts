import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { tempVault, type TempVault } from '../helpers/cli.ts';

const WRITER = fileURLToPath(new URL('../fixtures/secret-writer.ts', import.meta.url));

function startWriter(v: TempVault, prefix: string, count: number) {
  const child = spawn(process.execPath, [WRITER, v.dir, prefix, String(count)], { env: { ...process.env, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const acked: string[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (line.startsWith('ack ')) acked.push(line.slice(4));
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, acked, exited, stderr: () => stderr };
}

async function listNames(v: TempVault): Promise<Set<string>> {
  const r = await v.cli(['secrets', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return new Set((JSON.parse(r.stdout) as Array<{ name: string }>).map((s) => s.name));
}

describe('several processes on one vault', () => {
  it('two CLI processes creating secrets in a loop lose nothing', async () => {
    const v = await tempVault();
    try {
      const loop = async (prefix: string) => {
        for (let i = 0; i < 12; i++) {
          const r = await v.cli(['secrets', 'create', '--name', `${prefix}_${i}`, '--value', `value-${prefix}-${i}`]);
          assert.equal(r.code, 0, r.stderr);
        }
      };
      await Promise.all([loop('CLI_A'), loop('CLI_B')]);
      const names = await listNames(v);
      assert.equal(names.size, 24);
    } finally {
      v.cleanup();
    }
  });

  it('two writer processes with hundreds of writes lose nothing', async () => {
    const v = await tempVault();
    try {
      const a = startWriter(v, 'PROC_A', 150);
      const b = startWriter(v, 'PROC_B', 150);
      const [ea, eb] = await Promise.all([a.exited, b.exited]);
      assert.equal(ea.code, 0, a.stderr());
      assert.equal(eb.code, 0, b.stderr());
      const names = await listNames(v);
      assert.equal(names.size, 300);
      const verify = await v.cli(['secrets', 'verify', '--json']);
      assert.equal(verify.code, 0, verify.stderr);
    } finally {
      v.cleanup();
    }
  });

  it('a writer killed with SIGKILL mid-write leaves a vault that opens with every acknowledged write', async () => {
    const v = await tempVault();
    try {
      const w = startWriter(v, 'KILLED', 0);
      await new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => {
          if (w.acked.length >= 60) {
            clearInterval(timer);
            w.child.kill('SIGKILL');
            resolve();
          }
        }, 5);
        w.exited.then(() => {
          clearInterval(timer);
          reject(new Error(`writer exited early: ${w.stderr()}`));
        }, reject);
      });
      const { signal } = await w.exited;
      assert.equal(signal, 'SIGKILL');
      const names = await listNames(v);
      for (const name of w.acked) assert.ok(names.has(name), `acknowledged ${name} was lost`);
      // SQLite commits vault.db and audit.db one after the other: a kill between the two
      // leaves the anchor one commit ahead of the log, which verify names until the next write
      // records it as an audit.discontinuity. Any other finding is a fault.
      const verify = await v.cli(['secrets', 'verify', '--json']);
      if (verify.code !== 0) assert.match(verify.stderr, /one commit apart/, verify.stderr);
      const after = await v.cli(['secrets', 'create', '--name', 'AFTER_CRASH', '--value', 'after-crash-value']);
      assert.equal(after.code, 0, after.stderr);
      const again = await v.cli(['secrets', 'verify', '--json']);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      v.cleanup();
    }
  });
});
