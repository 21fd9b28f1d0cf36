// What an agent's responses are scrubbed of: every secret it can make aivault send, not only
// the one its request used. An agent granted two capabilities on one upstream (or on any
// upstream that keeps state: a request log, a webhook inspector) can send credential A there
// and read it back through capability B; so B's answer is scrubbed of A's secrets too.
// docs/threat-model.md ("Response path", promise 1) says what the set holds and why.
//
// The set is built once per agent, execution context and vault generation (grants, secrets,
// credentials, capabilities and agents all bump it), and kept in a small LRU: the hot path
// pays a map lookup, never a decryption or an automaton build.

import { createStrategy } from '../auth/index.ts';
import { AivaultError } from '../errors.ts';
import type { AuthConfig } from '../registry/types.ts';
import type { AgentRecord } from '../storage/types.ts';
import type { Vault } from '../vault/vault.ts';
import type { Catalog, ResolvedCredential } from './catalog.ts';
import { clientAuthValues, type OAuthTokens } from './oauth-tokens.ts';
import { Scrubber } from './scrub/scrubber.ts';
import { GenerationCache } from '../storage/generation-cache.ts';

/** Agents (by execution context) whose sets are kept. */
const MAX_AGENTS = 256;
/** Per agent: scrubbers widened by a request's own values that the set lacks (an OAuth token). */
const MAX_WIDENED = 16;

/** A grant that names nothing any more (deleted capability, flow or credential) reaches nothing. */
const GONE = new Set(['CAPABILITY_NOT_FOUND', 'CREDENTIAL_NOT_FOUND', 'PROVIDER_NOT_FOUND']);

interface Reach {
  values: ReadonlySet<string>;
  /** OAuth credentials, whose access tokens change without a new generation. */
  oauth: ResolvedCredential[];
  scrubber: Scrubber;
  widened: Map<string, Scrubber>;
}

/** A request that goes nowhere, for learning what a strategy injects whatever the request. */
const DRY_RUN_URL = 'https://aivault.invalid/';

/**
 * The strings a strategy injects on any request (`Bearer <key>`, a Basic header's base64, a
 * query or path credential), found by applying it to a request that is never sent. Per-request
 * values are not secrets (signatures), or are looked up on their own (an OAuth access token:
 * its strategy needs a token source, so it is not built here); a credential whose values
 * cannot be applied is never sent either.
 */
async function fixedInjections(auth: AuthConfig, secrets: ReadonlyMap<string, string>): Promise<string[]> {
  try {
    return await createStrategy(auth).apply({ method: 'GET', url: new URL(DRY_RUN_URL), headers: new Map(), body: undefined }, secrets);
  } catch {
    return [];
  }
}

function everyIn(values: Iterable<string>, set: ReadonlySet<string>): boolean {
  for (const v of values) if (v !== '' && !set.has(v)) return false;
  return true;
}

export class ReachableSecrets {
  readonly #vault: Vault;
  readonly #catalog: Catalog;
  readonly #tokens: Pick<OAuthTokens, 'held' | 'stored'>;
  /** `agent id + execution context` -> its set, kept while the generation stands. */
  readonly #reach: GenerationCache;

  constructor(vault: Vault, catalog: Catalog, tokens: Pick<OAuthTokens, 'held' | 'stored'>) {
    this.#vault = vault;
    this.#catalog = catalog;
    this.#tokens = tokens;
    this.#reach = new GenerationCache(() => vault.storage.generation(), MAX_AGENTS);
  }

  /**
   * The scrubber for what `agent` is shown at `generation`: every secret it can reach, and
   * `own`, what this request's credential and strategy used (normally already in the set),
   * and the access token this process now holds for each OAuth credential (refreshed since).
   */
  async scrubber(agent: AgentRecord, execution: string, generation: number, own: Iterable<string>): Promise<Scrubber> {
    const reach = await this.#lookup(agent, execution, generation);
    // The common case, checked without building anything: no OAuth, and what this request
    // used already in the set.
    if (reach.oauth.length === 0 && everyIn(own, reach.values)) return reach.scrubber;
    const tokens = reach.oauth.flatMap((c) => this.#tokens.held(c));
    const extra = [...new Set([...own, ...tokens])].filter((v) => v !== '' && !reach.values.has(v));
    if (extra.length === 0) return reach.scrubber;
    const key = extra.join('\u0000');
    let widened = reach.widened.get(key);
    if (!widened) {
      widened = new Scrubber([...reach.values, ...extra]);
      if (reach.widened.size >= MAX_WIDENED) reach.widened.delete(reach.widened.keys().next().value!);
      reach.widened.set(key, widened);
    }
    return widened;
  }

  #lookup(agent: AgentRecord, execution: string, generation: number): Promise<Reach> {
    // The sets hold decrypted values: a newer generation drops them all (generation-cache.ts).
    return this.#reach.at(generation).memo(`${agent.id} ${execution}`, () => this.#build(agent, execution));
  }

  async #build(agent: AgentRecord, execution: string): Promise<Reach> {
    const values = new Set<string>();
    const credentials = new Map<string, ResolvedCredential>();
    // Every grant row, expired or not: scrubbing more than needed is safe, and the set then
    // changes only with the generation.
    for (const grant of await this.#vault.storage.listGrants(agent.id)) {
      try {
        const flow = await this.#vault.storage.getFlow(grant.capability);
        const credential = flow
          ? flow.credential !== null ? await this.#catalog.describeCredential(flow.credential, execution) : undefined
          : await this.#catalog.resolveCapability(grant.capability, execution).then((c) => {
              for (const blocked of c.policy?.responseBlock ?? []) values.add(blocked);
              return c.credential;
            });
        if (credential) credentials.set(`${credential.source}:${credential.name}@${credential.scope}`, credential);
      } catch (err) {
        if (!(err instanceof AivaultError && GONE.has(err.code))) throw err;
      }
    }
    const oauth: ResolvedCredential[] = [];
    for (const credential of credentials.values()) {
      await this.#addCredential(credential, values);
      if (typeof credential.auth === 'object' && 'o_auth2' in credential.auth) {
        oauth.push(credential);
        for (const token of [await this.#tokens.stored(credential), ...this.#tokens.held(credential)]) if (token) values.add(token);
      }
    }
    return { values, oauth, scrubber: new Scrubber(values), widened: new Map() };
  }

  /** A credential's values, every kept version, and what its strategy injects with the current ones. */
  async #addCredential(credential: ResolvedCredential, values: Set<string>): Promise<void> {
    const current = new Map<string, string>();
    for (const [placeholder, id] of credential.bindings) {
      const record = await this.#vault.storage.getSecret(id);
      if (!record) continue;
      for (const { version } of await this.#vault.storage.listSecretVersions(id)) {
        let bytes: Buffer;
        try {
          bytes = await this.#vault.revealSecret(id, { credential: true, version });
        } catch (err) {
          // A short value the owner did not allow is never sent (the credential refuses it).
          if (err instanceof AivaultError && err.code === 'CREDENTIAL_NOT_READY') continue;
          throw err;
        }
        const value = bytes.toString('utf8');
        bytes.fill(0);
        values.add(value);
        if (version === record.currentVersion) current.set(placeholder, value);
      }
    }
    for (const injected of await fixedInjections(credential.auth, current)) values.add(injected);
    if (typeof credential.auth === 'object' && 'o_auth2' in credential.auth) for (const v of await clientAuthValues(credential.auth.o_auth2, current)) values.add(v);
  }
}
