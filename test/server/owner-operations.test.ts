// Every owner operation in the table, run in process against one vault and through a real
// daemon (signed RPC, real owner key) against a twin vault set up the same way: the results
// must agree once ids, times and per-vault keyed values are normalised. An operation added to
// the table without a step here fails the first test.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runAs } from '../../src/audit/actor.ts';
import { isAivaultError } from '../../src/errors.ts';
import { OWNER_OPERATIONS, runOwnerOperation, type OwnerOp } from '../../src/owner/operations.ts';
import { builtinRegistry } from '../../src/registry/registry.ts';
import { createAgentClient } from '../../src/sdk/agent-client.ts';
import { createOwnerClient, type OwnerClient } from '../../src/sdk/owner-client.ts';
import { composeServices, type Services } from '../../src/services.ts';
import { Vault } from '../../src/vault/vault.ts';
import { canary, tempVault, type TempVault } from '../helpers/cli.ts';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

/** One side: a way to run an owner operation, and to invoke as the agent `bot`. */
interface Side {
  call(op: OwnerOp, args: Record<string, unknown>): Promise<unknown>;
  /** Starts an invoke of ops/api as the agent; settles with its status, or rejects with its error code. */
  invokeAsBot(): Promise<number | string>;
  /** Results of earlier steps, by label. */
  results: Map<string, unknown>;
  /** The outcome of the invoke waiting for approval. */
  waiting?: Promise<number | string>;
}

interface Step {
  op: OwnerOp;
  /** Defaults to the op name; names the result for later steps. */
  label?: string;
  args: (results: Map<string, unknown>) => Record<string, unknown>;
  /** Runs on the side before the call (e.g. starts an invoke that waits for approval). */
  before?: (side: Side) => Promise<void>;
  after?: (side: Side) => Promise<void>;
}

const VALUE = canary('OPS');
const ROTATED = canary('OPS_ROTATED');
const OPENAI = canary('sk-ops');
const second = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();

const ref = (results: Map<string, unknown>, label: string) => (results.get(label) as { ref: string }).ref;

async function pendingApproval(side: Side): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const pending = (await side.call('approval.list', {})) as Array<{ id: string }>;
    if (pending.length > 0) return pending[0]!.id;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no approval became pending');
}

/** Starts an invoke that waits for approval, and waits until it is pending. */
async function waitingInvoke(side: Side): Promise<void> {
  side.waiting = side.invokeAsBot();
  side.waiting.catch(() => {});
  side.results.set('pending', await pendingApproval(side));
}

function steps(up: Upstream): Step[] {
  return [
    { op: 'owner.list', args: () => ({}) },
    { op: 'owner.add', args: () => ({ name: 'second', publicKey: second }) },
    { op: 'owner.remove', args: () => ({ owner: 'second' }) },
    { op: 'secrets.create', label: 'ops', args: () => ({ name: 'OPS_KEY', value: VALUE, description: 'for the table walk', aliases: ['ops-key'] }) },
    { op: 'secrets.create', label: 'openai', args: () => ({ name: 'OPENAI_API_KEY', value: OPENAI }) },
    { op: 'secrets.import', args: () => ({ entries: [{ name: 'IMPORTED_ONE', value: canary('IMPORTED') }] }) },
    { op: 'secrets.list', args: () => ({}) },
    { op: 'secrets.describe', args: () => ({ secret: 'OPS_KEY' }) },
    { op: 'secrets.rotate', args: () => ({ secret: 'OPS_KEY', value: ROTATED }) },
    { op: 'secrets.rollback', args: () => ({ secret: 'OPS_KEY' }) },
    { op: 'secrets.update', args: () => ({ secret: 'IMPORTED_ONE', aliases: ['imported'] }) },
    { op: 'secrets.attach-group', args: () => ({ secret: 'OPS_KEY', workspaceId: 'w', groupId: 'g' }) },
    { op: 'secrets.detach-group', args: () => ({ secret: 'OPS_KEY', workspaceId: 'w', groupId: 'g' }) },
    { op: 'secrets.compare', args: () => ({ secret: 'OPS_KEY', value: VALUE }) },
    { op: 'secrets.prove', args: () => ({ secret: 'OPS_KEY', challenge: 'the-challenge' }) },
    { op: 'endpoint.set', args: () => ({ provider: 'openai', hosts: { 'api.openai.com': up.host }, allowHttp: true, allowPrivateNetwork: true }) },
    { op: 'endpoint.list', args: () => ({}) },
    { op: 'secrets.validate', args: () => ({ secret: 'OPENAI_API_KEY' }) },
    {
      op: 'credential.create',
      args: (r) => ({ name: 'ops', provider: 'ops', auth: { header: { header_name: 'x-key', value_template: '{{secret}}' } }, secretRefs: { secret: ref(r, 'ops') }, hosts: [up.host], allowHttp: true, allowPrivateNetwork: true }),
    },
    { op: 'credential.update', args: () => ({ name: 'ops', hosts: [up.host, 'ops.example.com'], allowHttp: true }) },
    { op: 'credential.list', args: () => ({}) },
    { op: 'credential.describe', args: () => ({ name: 'ops' }) },
    { op: 'capability.create', args: () => ({ id: 'ops/api', provider: 'ops', credential: 'ops', methods: ['GET'], pathPrefixes: ['/v1'] }) },
    { op: 'capability.update', args: () => ({ id: 'ops/api', methods: ['GET', 'POST'], hosts: [up.host], limits: { timeoutMs: 5000, maxRequestBytes: null } }) },
    { op: 'capability.list', args: () => ({}) },
    { op: 'capability.describe', args: () => ({ id: 'ops/api', context: 'workspace:w' }) },
    { op: 'capability.policy.set', args: () => ({ id: 'ops/api', rateLimitPerMinute: 100, responseBlock: ['blocked-text'] }) },
    { op: 'capability.policy.clear', args: () => ({ id: 'ops/api' }) },
    { op: 'flow.create', args: () => ({ id: 'ops/send', mode: 'send_secret', target: `http://${up.host}/v1/flow`, method: 'POST', credential: 'ops', allowHttp: true, allowPrivateNetwork: true }) },
    { op: 'flow.list', args: () => ({}) },
    { op: 'flow.describe', args: () => ({ id: 'ops/send' }) },
    { op: 'agent.create', args: () => ({ name: 'bot' }) },
    { op: 'agent.list', args: () => ({}) },
    { op: 'agent.context', label: 'context-set', args: () => ({ agent: 'bot', context: 'workspace:w' }) },
    { op: 'agent.context', args: () => ({ agent: 'bot', context: null }) },
    // ops/api by name, and every trello capability as it is now: not ready (no TRELLO_* secret), a warning on each side.
    {
      op: 'grant.create',
      args: () => ({ agent: 'bot', capabilities: ['ops/api', 'trello/*'], approve: 'each' }),
      after: async (side) => {
        const { grants, warnings } = side.results.get('grant.create') as { grants: Array<{ capability: string }>; warnings: Array<{ capability: string; missing: string[] }> };
        assert.deepEqual(grants.map((g) => g.capability), ['ops/api', 'trello/boards', 'trello/cards', 'trello/lists', 'trello/me']);
        assert.deepEqual(new Set(warnings.map((w) => `${w.capability}: ${w.missing.join(' ')}`)), new Set(grants.slice(1).map((g) => `${g.capability}: TRELLO_API_KEY TRELLO_TOKEN`)));
      },
    },
    { op: 'grant.list', args: () => ({}) },
    { op: 'approval.list', args: () => ({}), before: waitingInvoke },
    {
      op: 'approval.approve',
      args: (r) => ({ id: r.get('pending') }),
      after: async (side) => assert.equal(await side.waiting, 200),
    },
    {
      op: 'approval.deny',
      args: (r) => ({ id: r.get('pending') }),
      before: waitingInvoke,
      after: async (side) => assert.equal(await side.waiting, 'APPROVAL_DENIED'),
    },
    { op: 'approval.list', label: 'approvals-all', args: () => ({ all: true }) },
    { op: 'agent.describe', args: () => ({ agent: 'bot' }) },
    { op: 'grant.revoke', args: () => ({ agent: 'bot', capabilities: ['ops/api', 'trello/*'] }) },
    { op: 'agent.revoke', args: () => ({ agent: 'bot' }) },
    { op: 'flow.delete', args: () => ({ id: 'ops/send' }) },
    { op: 'capability.delete', args: () => ({ id: 'ops/api' }) },
    { op: 'credential.delete', args: () => ({ name: 'ops' }) },
    { op: 'endpoint.clear', args: () => ({ provider: 'openai' }) },
    { op: 'secrets.delete', args: () => ({ secret: 'IMPORTED_ONE' }) },
    { op: 'audit.list', args: () => ({ afterSeq: 0 }) },
    { op: 'audit.head', args: () => ({}) },
    { op: 'audit.verify', args: (r) => ({ against: r.get('audit.head') }) },
  ];
}

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
/** Values that differ between twin vaults by construction: keyed or chained hashes, tokens, durations (random ids and times are named below). */
const VARYING_KEYS = new Set(['fingerprint', 'hash', 'prevHash', 'mac', 'outcomeMac', 'token', 'durationMs']);
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

function normalise(value: unknown, ids: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => normalise(v, ids));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, VARYING_KEYS.has(k) && v !== null ? '<varies>' : normalise(v, ids)]));
  }
  if (typeof value !== 'string') return value;
  if (TIME.test(value)) return '<time>';
  // An id inside a longer string (a reference, an audit target): the same id reads the same;
  // one no result named (the vault's own) is a uuid.
  return [...ids].reduce((s, [id, label]) => s.replaceAll(id, label), value).replace(UUID, '<uuid>');
}

/** Every id a side's results hold, named by where it first appeared, so both sides' ids line up. */
function idsOf(results: Map<string, unknown>): Map<string, string> {
  const ids = new Map<string, string>();
  const walk = (v: unknown, where: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${where}[${i}]`));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${where}.${k}`);
    else if (typeof v === 'string' && /(^|\.)(id|agentId)$/.test(where) && /^[A-Za-z0-9_-]{8,}$/.test(v) && !ids.has(v)) ids.set(v, `<${where}>`);
  };
  for (const [label, v] of results) walk(v, label);
  return ids;
}

describe('owner operations: in process and through the daemon, one table', () => {
  let up: Upstream;
  let localVault: TempVault, remoteVault: TempVault;
  let vault: Vault;
  let services: Services;
  let daemon: RunningDaemon;
  let owner: OwnerClient;
  let local: Side, remote: Side;

  before(async () => {
    up = await startUpstream();
    [localVault, remoteVault] = await Promise.all([tempVault(), tempVault()]);
    vault = await Vault.open({ dir: localVault.dir });
    services = composeServices(vault, await builtinRegistry());
    services.approvals.configure({ pollMs: 20 });
    const localOwner = (await services.owners.list())[0]!.id;
    local = {
      results: new Map(),
      // As the daemon does: validated, run as that owner, and answered as JSON.
      call: async (op, args) => JSON.parse(JSON.stringify(await runAs(`owner:${localOwner}`, () => runOwnerOperation(services, op, args)))) as unknown,
      invokeAsBot: async () => {
        const agent = await services.agents.get('bot');
        try {
          const res = await services.broker.invoke({ capability: 'ops/api', method: 'GET', path: '/v1/x' }, { agent });
          res.body.resume();
          await res.done;
          return res.status;
        } catch (err) {
          if (isAivaultError(err)) return err.code;
          throw err;
        }
      },
    };
    daemon = await startDaemon(remoteVault, ['--socket', join(remoteVault.dir, 'ops.sock')]);
    const ownerId = (JSON.parse((await remoteVault.cli(['owner', 'list', '--json'])).stdout) as Array<{ id: string }>)[0]!.id;
    owner = createOwnerClient({ socketPath: daemon.socket!, ownerId, privateKey: readFileSync(join(remoteVault.dir, 'owner.key'), 'utf8') });
    remote = {
      results: new Map(),
      call: (op, args) => owner.call(op, args),
      invokeAsBot: async () => {
        const client = createAgentClient({ socketPath: daemon.socket!, token: (remote.results.get('agent.create') as { token: string }).token });
        try {
          const res = await client.invoke({ capability: 'ops/api', path: '/v1/x' });
          await res.text();
          return res.status;
        } catch (err) {
          if (isAivaultError(err)) return err.code;
          throw err;
        } finally {
          await client.close();
        }
      },
    };
  });

  after(async () => {
    await owner?.close();
    await daemon?.stop();
    await services?.close();
    await vault?.close();
    await up?.close();
    localVault?.cleanup();
    remoteVault?.cleanup();
  });

  it('every operation in the table has a step here', () => {
    const covered = new Set(steps({ host: '' } as Upstream).map((s) => s.op));
    assert.deepEqual(Object.keys(OWNER_OPERATIONS).filter((op) => !covered.has(op as OwnerOp)), []);
  });

  it('each answers the same in process and through the daemon, and no answer carries a secret value', async () => {
    for (const step of steps(up)) {
      const label = step.label ?? step.op;
      for (const side of [local, remote]) {
        await step.before?.(side);
        side.results.set(label, await side.call(step.op, step.args(side.results)));
        await step.after?.(side);
      }
      const [l, r] = [local, remote].map((side) => normalise(side.results.get(label), idsOf(side.results)));
      assert.deepEqual(r, l, `${label}: the daemon's answer differs from the in-process one`);
    }
    const all = JSON.stringify([...local.results.values(), ...remote.results.values()]);
    for (const value of [VALUE, ROTATED, OPENAI]) assert.equal(all.includes(value), false, 'a secret value came back');
  });
});
