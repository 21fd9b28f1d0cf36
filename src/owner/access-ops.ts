// Owner operations on who may do what: agents, their grants, owners, pending approvals.

import { z } from 'zod';
import { parseExpiry } from '../policy/agents.ts';
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
    args: z.strictObject({ agent: name, capability: name, expires: name.optional(), rate: name.optional(), methods: z.array(name).max(16).optional(), approve: name.optional() }),
    async run({ agents, broker }, a) {
      const cap = await broker.grantable(a.capability);
      return agents.grant({ agent: a.agent, capability: cap.id, expiresAt: a.expires ? parseExpiry(a.expires) : null, rate: a.rate ?? null, methods: a.methods ?? null, approve: a.approve ?? null }, cap.methods);
    },
  }),
  'grant.list': operation({ args: z.strictObject({ agent: name.optional() }), run: ({ agents }, a) => agents.listGrants(a.agent) }),
  'grant.revoke': operation({
    args: z.strictObject({ agent: name, capability: name }),
    run: async ({ agents }, a) => {
      await agents.revokeGrant(a.agent, a.capability);
      return { agent: a.agent, capability: a.capability, revoked: true };
    },
  }),
  'owner.add': operation({ args: z.strictObject({ name, publicKey }), run: ({ owners }, a) => owners.add(a.name, a.publicKey), view: ({ id, name }) => ({ id, name }) }),
  'owner.list': operation({ args: none, run: async ({ owners }) => (await owners.list()).map(({ id, name, createdAt }) => ({ id, name, createdAt })) }),
  'owner.remove': operation({ args: z.strictObject({ owner: name }), run: ({ owners }, a) => owners.remove(a.owner), view: ({ id, name }) => ({ id, name }) }),
  'approval.list': operation({ args: z.strictObject({ all: flag }), run: ({ approvals }, a) => approvals.list(a.all ? undefined : 'pending') }),
  'approval.approve': operation({ args: id, run: ({ approvals }, a) => approvals.decide(a.id, 'approve') }),
  'approval.deny': operation({ args: id, run: ({ approvals }, a) => approvals.decide(a.id, 'deny') }),
};
