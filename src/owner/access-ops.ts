// Owner operations on who may do what: agents, their grants, owners, pending approvals.

import { z } from 'zod';
import { parseExpiry } from '../policy/agents.ts';
import { GLOBAL_SCOPE } from '../vault/scopes.ts';
import { planGrant } from './grants.ts';
import { flag, name, none, operation } from './operation.ts';
import { agentView } from './views.ts';

const publicKey = z.string().max(4096);
const id = z.strictObject({ id: name });

export const accessOperations = {
  'agent.create': operation({
    args: z.strictObject({ name, publicKey: publicKey.optional(), context: name.optional() }),
    async run({ agents }, a) {
      const created = await agents.create(a.name, { ...(a.publicKey ? { publicKey: a.publicKey } : {}), ...(a.context ? { context: a.context } : {}) });
      // The token is shown this once; aivault keeps only its hash.
      return { id: created.agent.id, name: created.agent.name, ...(created.token ? { token: created.token } : {}) };
    },
  }),
  'agent.list': operation({ args: none, run: async ({ agents }) => (await agents.list()).map(agentView) }),
  'agent.describe': operation({
    args: z.strictObject({ agent: name }),
    run: async ({ agents }, a) => ({ ...agentView(await agents.get(a.agent)), grants: await agents.listGrants(a.agent) }),
  }),
  'agent.revoke': operation({ args: z.strictObject({ agent: name }), run: ({ agents }, a) => agents.revoke(a.agent), view: agentView }),
  'agent.context': operation({
    args: z.strictObject({ agent: name, context: name.nullable() }),
    run: ({ agents }, a) => agents.setContext(a.agent, a.context ?? undefined),
    view: agentView,
  }),
  'grant.create': operation({
    args: z.strictObject({
      agent: name,
      capabilities: z.array(name).min(1).max(64),
      expires: name.optional(),
      rate: name.optional(),
      methods: z.array(name).max(16).optional(),
      approve: name.optional(),
    }),
    async run(services, a) {
      const agent = await services.agents.get(a.agent);
      const held = new Set((await services.agents.listGrants(agent.id)).map((g) => g.capability));
      const plan = await planGrant(services, a.capabilities, a.methods, agent.context ?? GLOBAL_SCOPE, held);
      const terms = { expiresAt: a.expires ? parseExpiry(a.expires) : null, rate: a.rate ?? null, approve: a.approve ?? null };
      const grants = await services.agents.grantEach(agent.id, plan.items, terms);
      // Not ready is granted all the same (the owner may store the secret later); the agent is refused until then.
      return { agent: agent.name, grants, skipped: plan.skipped, kept: plan.kept, warnings: plan.notReady };
    },
  }),
  'grant.list': operation({ args: z.strictObject({ agent: name.optional() }), run: ({ agents }, a) => agents.listGrants(a.agent) }),
  'grant.revoke': operation({
    args: z.strictObject({ agent: name, capabilities: z.array(name).min(1).max(64) }),
    run: async ({ agents }, a) => {
      const { agent, revoked } = await agents.revokeGrants(a.agent, a.capabilities);
      return { agent: agent.name, revoked };
    },
  }),
  'owner.add': operation({ args: z.strictObject({ name, publicKey }), run: ({ owners }, a) => owners.add(a.name, a.publicKey), view: ({ id, name }) => ({ id, name }) }),
  'owner.list': operation({ args: none, run: async ({ owners }) => (await owners.list()).map(({ id, name, createdAt }) => ({ id, name, createdAt })) }),
  'owner.remove': operation({ args: z.strictObject({ owner: name }), run: ({ owners }, a) => owners.remove(a.owner), view: ({ id, name }) => ({ id, name }) }),
  'approval.list': operation({ args: z.strictObject({ all: flag }), run: ({ approvals }, a) => approvals.list(a.all ? undefined : 'pending') }),
  'approval.approve': operation({ args: id, run: ({ approvals }, a) => approvals.decide(a.id, 'approve') }),
  'approval.deny': operation({ args: id, run: ({ approvals }, a) => approvals.decide(a.id, 'deny') }),
};
