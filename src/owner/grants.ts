// What one `grant` command grants: each word a capability or flow by id, or PROVIDER/*
// expanded into the provider's capabilities as they are now (src/policy/grant-targets.ts);
// each with what it still lacks to be ready for the agent, which the owner is warned about.

import { credentialReady, type ResolvedCredential } from '../broker/catalog.ts';
import { AivaultError } from '../errors.ts';
import { normaliseMethods, type GrantItem } from '../policy/agents.ts';
import { covers, grantTarget, type GrantTarget } from '../policy/grant-targets.ts';
import type { Services } from '../services.ts';

/** Why a granted capability cannot be invoked yet: the readiness `capability list` shows. */
export interface NotReady {
  capability: string;
  /** Secrets (built-in) or placeholders (custom) that do not exist yet, or a flow's deleted credential. */
  missing: string[];
  /** Secrets that exist but do not serve the agent's context. */
  outOfScope: string[];
}

interface Covered {
  id: string;
  methods: readonly string[];
  /** Named by id (its terms must fit it), not only covered by a PROVIDER/* pattern. */
  named: boolean;
  /** What it lacks to be ready for a caller in the agent's context; none when ready. */
  notReady: Omit<NotReady, 'capability'> | undefined;
}

export interface GrantPlan {
  items: GrantItem[];
  /** Capabilities a pattern covers that allow none of the granted methods: not granted. */
  skipped: string[];
  /** Capabilities a pattern covers that the agent holds a grant for already: that grant is kept as it is. */
  kept: string[];
  notReady: NotReady[];
}

/** What `credential` lacks to be ready (credentialReady), if anything. */
function lacking(credential: ResolvedCredential): Covered['notReady'] {
  return credentialReady(credential) ? undefined : { missing: credential.missing, outOfScope: credential.outOfScope };
}

/** The capability or flow `id`, as a caller in `context` gets it. */
async function named({ vault, catalog }: Services, id: string, context: string): Promise<Covered> {
  const flow = await vault.storage.getFlow(id);
  if (!flow) {
    const cap = await catalog.resolveCapability(id, context);
    return { id, methods: cap.methods, named: true, notReady: lacking(cap.credential) };
  }
  const covered: Covered = { id, methods: [flow.method], named: true, notReady: undefined };
  if (!flow.credential) return covered;
  // A flow's credential can be deleted under it (nothing else uses it): then it is not ready.
  const credential = await catalog.describeCredential(flow.credential, context).catch((err: unknown) => {
    if (err instanceof AivaultError && err.code === 'CREDENTIAL_NOT_FOUND') return undefined;
    throw err;
  });
  return { ...covered, notReady: credential ? lacking(credential) : { missing: [`credential ${flow.credential}`], outOfScope: [] } };
}

/** Every capability, built-in or custom, of the pattern's provider as it is now (flows have no provider). */
async function expanded({ registry, vault, catalog }: Services, target: GrantTarget & { provider: string }, context: string): Promise<Covered[]> {
  const ids = [...registry.capabilities.values(), ...(await vault.storage.listCapabilities())].filter((c) => covers(target, c)).map((c) => c.id);
  if (ids.length === 0) throw new AivaultError('PROVIDER_NOT_FOUND', `no provider "${target.provider.slice(0, 64)}" with capabilities (aivault registry list, aivault capability list)`);
  const out: Covered[] = [];
  for (const id of ids) {
    const cap = await catalog.resolveCapability(id, context);
    out.push({ id, methods: cap.methods, named: false, notReady: lacking(cap.credential) });
  }
  return out;
}

/**
 * The grants `targets` make for an agent in `context`, holding grants for `held`, with the
 * method subset `methods`. A capability named by id is granted (replacing a grant held for
 * it); one only covered by a pattern is granted unless the agent holds a grant for it, which
 * a pattern never changes (so `PROVIDER/*` cannot loosen the terms of a grant made by name,
 * such as its approval). A pattern with a method subset grants each capability it covers
 * those of the methods it has, and none that has none of them.
 */
export async function planGrant(services: Services, targets: readonly string[], methods: readonly string[] | undefined, context: string, held: ReadonlySet<string>): Promise<GrantPlan> {
  const covered = new Map<string, Covered>();
  for (const target of targets.map(grantTarget)) {
    for (const c of 'id' in target ? [await named(services, target.id, context)] : await expanded(services, target, context)) {
      if (c.named || !covered.has(c.id)) covered.set(c.id, c);
    }
  }
  const wanted = normaliseMethods(methods);
  const plan: GrantPlan = { items: [], skipped: [], kept: [], notReady: [] };
  for (const c of covered.values()) {
    if (!c.named && held.has(c.id)) {
      plan.kept.push(c.id);
      continue;
    }
    const subset = wanted && !c.named ? wanted.filter((m) => c.methods.includes(m)) : wanted;
    if (subset?.length === 0) {
      plan.skipped.push(c.id);
      continue;
    }
    plan.items.push({ capability: c.id, capabilityMethods: c.methods, methods: subset });
    if (c.notReady) plan.notReady.push({ capability: c.id, ...c.notReady });
  }
  if (plan.items.length === 0 && plan.kept.length === 0) throw new AivaultError('INVALID_ARGUMENT', `none of the capabilities named allows ${wanted?.join(', ')}`, { field: 'methods' });
  return plan;
}
