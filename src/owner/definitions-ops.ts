// Owner operations on definitions: credentials, capabilities and their policy, endpoint
// overrides, flows.

import { z } from 'zod';
import type { AuthConfig } from '../registry/types.ts';
import type { DefinedCredential } from '../broker/definitions.ts';
import type { Services } from '../services.ts';
import { flag, name, none, operation } from './operation.ts';
import { capabilityView, credentialView, describeCapability } from './views.ts';

const context = name.optional();

/** A removal answers what it removed (the call itself returns nothing). */
function removal<A extends z.ZodType, V>(args: A, remove: (definitions: Services['definitions'], a: z.output<A>) => Promise<void>, answer: (a: z.output<A>) => V) {
  return operation({
    args,
    run: async ({ definitions }: Services, a: z.output<A>) => {
      await remove(definitions, a);
      return answer(a);
    },
  });
}
const limit = z.number().int().optional();
const limitsOf = <T extends z.ZodType>(one: T) => z.strictObject({ timeoutMs: one, connectTimeoutMs: one, maxRequestBytes: one, maxResponseBytes: one });

// A credential's and a capability's fields, as create takes them; update takes the same, each optional.
const credentialFields = {
  // Checked by the catalog, against the registry's rules for each strategy.
  auth: z.unknown(),
  secretRefs: z.record(z.string(), name),
  hosts: z.array(name).max(64),
  allowHttp: flag,
  allowPrivateNetwork: flag,
  anyTenant: flag,
};
const capabilityFields = {
  credential: name,
  methods: z.array(name).min(1).max(16),
  pathPrefixes: z.array(name).min(1).max(64),
  hosts: z.array(name).max(64).optional(),
  websocket: flag,
};
const definedView = (d: DefinedCredential) => ({ ...credentialView(d.credential), warnings: d.warnings });

export const definitionsOperations = {
  'credential.create': operation({
    args: z.strictObject({ name, provider: name, ...credentialFields }),
    run: ({ definitions }, a) => definitions.createCredential({ ...a, auth: a.auth as AuthConfig }),
    view: definedView,
  }),
  'credential.update': operation({
    args: z.strictObject({ name, ...z.strictObject(credentialFields).partial().shape }),
    run: ({ definitions }, { name, auth, ...change }) => definitions.updateCredential(name, { ...change, ...(auth !== undefined ? { auth: auth as AuthConfig } : {}) }),
    view: definedView,
  }),
  'credential.list': operation({ args: none, run: async ({ catalog }) => (await catalog.listCredentials()).map(credentialView) }),
  'credential.describe': operation({ args: z.strictObject({ name }), run: ({ catalog }, a) => catalog.describeCredential(a.name), view: credentialView }),
  'credential.delete': removal(z.strictObject({ name }), (d, a) => d.deleteCredential(a.name), (a) => ({ deleted: a.name })),
  'capability.create': operation({
    args: z.strictObject({ id: name, provider: name, ...capabilityFields, limits: limitsOf(limit).optional() }),
    run: ({ definitions }, a) => definitions.createCapability({ ...a, hosts: a.hosts ?? [], ...(a.limits ? { limits: a.limits } : {}) }),
    view: (c) => capabilityView(c),
  }),
  'capability.update': operation({
    // A limit set to null returns to its default.
    args: z.strictObject({ id: name, ...z.strictObject(capabilityFields).partial().shape, limits: limitsOf(limit.nullable()).optional() }),
    run: ({ definitions }, { id, ...change }) => definitions.updateCapability(id, change),
    view: (c) => capabilityView(c),
  }),
  'capability.list': operation({ args: z.strictObject({ context }), run: async ({ catalog }, a) => (await catalog.listCapabilities(a.context)).map((c) => capabilityView(c)) }),
  'capability.describe': operation({ args: z.strictObject({ id: name, context }), run: ({ catalog }, a) => describeCapability(catalog, a.id, a.context) }),
  'capability.delete': removal(z.strictObject({ id: name }), (d, a) => d.deleteCapability(a.id), (a) => ({ deleted: a.id })),
  'capability.policy.set': operation({
    args: z.strictObject({ id: name, rateLimitPerMinute: limit, maxRequestBodyBytes: limit, maxResponseBodyBytes: limit, responseBlock: z.array(z.string().max(1024)).max(64).optional() }),
    run: ({ definitions }, { id, ...change }) => definitions.setPolicy(id, change),
  }),
  'capability.policy.clear': removal(z.strictObject({ id: name }), (d, a) => d.clearPolicy(a.id), (a) => ({ id: a.id, cleared: true })),
  'endpoint.set': operation({
    args: z.strictObject({ provider: name, hosts: z.record(z.string(), name).default({}), tenants: z.array(name).max(64).optional(), tokenEndpoint: name.optional(), allowHttp: flag, allowPrivateNetwork: flag }),
    run: ({ definitions }, a) =>
      definitions.setEndpointOverride({ provider: a.provider, hosts: a.hosts, ...(a.tenants ? { tenants: a.tenants } : {}), ...(a.tokenEndpoint ? { tokenEndpoint: a.tokenEndpoint } : {}), allowHttp: a.allowHttp === true, allowPrivateNetwork: a.allowPrivateNetwork === true }),
  }),
  'endpoint.list': operation({ args: none, run: ({ definitions }) => definitions.listEndpointOverrides() }),
  'endpoint.clear': removal(z.strictObject({ provider: name }), (d, a) => d.clearEndpointOverride(a.provider), (a) => ({ provider: a.provider, cleared: true })),
  'flow.create': operation({
    args: z.strictObject({
      id: name,
      mode: name,
      target: z.string().min(1).max(8192),
      method: name,
      visibility: name.optional(),
      kind: name.optional(),
      storeField: name.optional(),
      storeAlias: name.optional(),
      overwrite: flag,
      credential: name.optional(),
      allowHttp: flag,
      allowPrivateNetwork: flag,
    }),
    run: ({ definitions }, a) => definitions.createFlow(a),
  }),
  'flow.list': operation({ args: none, run: ({ definitions }) => definitions.listFlows() }),
  'flow.describe': operation({ args: z.strictObject({ id: name }), run: ({ definitions }, a) => definitions.getFlow(a.id) }),
  'flow.delete': removal(z.strictObject({ id: name }), (d, a) => d.deleteFlow(a.id), (a) => ({ id: a.id, deleted: true })),
};
