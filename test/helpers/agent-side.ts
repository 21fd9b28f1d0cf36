// The attacker's side of an end-to-end test: a vault the owner set up, a daemon process on a
// Unix socket, and an agent holding only its token, speaking raw HTTP to the daemon.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { tempVault, type TempVault } from './cli.ts';
import { startDaemon, type RunningDaemon } from './daemon.ts';

/** Runs an owner command that must succeed; its stdout. */
export type Owner = (args: string[]) => Promise<string>;

export interface Answer {
  status: number;
  /** The daemon's refusal code (`x-aivault-error`), if it refused. */
  code: string | undefined;
  text: string;
}

export interface AgentSide {
  v: TempVault;
  d: RunningDaemon;
  token: string;
  dispatcher: Agent;
  owner: Owner;
  /** POST /v1/invoke as the agent (method GET unless given). */
  invoke(capability: string, body: Record<string, unknown>): Promise<Answer>;
  close(): Promise<void>;
}

/** `prepare` sets the vault up as the owner and names the capabilities the agent is granted. */
export async function startAgentSide(prepare: (owner: Owner) => Promise<string[]>, o: { listen?: boolean } = {}): Promise<AgentSide> {
  const v = await tempVault();
  const owner: Owner = async (args) => {
    const r = await v.cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const grants = await prepare(owner);
  const token = (JSON.parse(await owner(['agent', 'create', 'agent-side', '--json'])) as { token: string }).token;
  for (const capability of grants) await owner(['grant', 'agent-side', capability]);
  const d = await startDaemon(v, ['--socket', join(v.dir, 'agent-side.sock'), ...(o.listen ? ['--listen', '127.0.0.1:0'] : [])]);
  const dispatcher = new Agent({ connect: { socketPath: d.socket! } });
  return {
    v,
    d,
    token,
    dispatcher,
    owner,
    invoke: async (capability, body) => {
      const res = await request('http://aivault/v1/invoke', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ capability, method: 'GET', ...body }), dispatcher });
      const text = await res.body.text();
      const code = res.headers['x-aivault-error'];
      return { status: res.statusCode, code: typeof code === 'string' ? code : undefined, text };
    },
    close: async () => {
      await dispatcher.close();
      await d.stop();
      v.cleanup();
    },
  };
}
