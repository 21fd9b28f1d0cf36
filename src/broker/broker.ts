// The invoke pipeline (DESIGN.md "One invoke, step by step"). Every way in (CLI, daemon,
// gateway, MCP) calls `invoke`, so no path is weaker than another:
//   capability -> method -> target URL (host, path) -> credential ready -> headers ->
//   body size -> [audit record, fail closed] -> secrets -> strategy -> upstream ->
//   streamed, decoded, size-capped, scrubbed response -> audit outcome.

import type { Readable } from 'node:stream';
import { createStrategy, type AuthStrategy, type OutboundRequest } from '../auth/index.ts';
import type { OAuth2Strategy } from '../auth/oauth2.ts';
import { AivaultError } from '../errors.ts';
import { assertAddressAllowed, isIpLiteral } from '../policy/dns.ts';
import { defaultPort, hostMatches, portOf } from '../policy/hosts.ts';
import { cgiName, headerAllowed, sanitizeAgentHeaders, valuesNamed } from '../policy/headers.ts';
import { assertNoMethodOverride } from '../policy/overrides.ts';
import { assertTenant } from '../policy/tenants.ts';
import { approvalDetails } from './approval-details.ts';
import { redirectTarget, resolveTarget, routeTarget, type Target } from '../policy/target.ts';
import { GLOBAL_SCOPE, assertScope } from '../vault/scopes.ts';
import type { Vault } from '../vault/vault.ts';
import { RateLimitedError, grantExpired, type Agents } from '../policy/agents.ts';
import { RateLimiter } from '../policy/rate-limit.ts';
import type { AgentRecord, ApprovalRecord, GrantRecord } from '../storage/types.ts';
import type { Approvals } from '../policy/approvals.ts';
import { DEFAULT_LIMITS, type Catalog, type ResolvedCapability, type ResolvedCredential } from './catalog.ts';
import type { OAuthTokens } from './oauth-tokens.ts';
import { FLOW_MAX_BYTES, acquires, flowResult, storeAcquired, type FlowResult } from './flows.ts';
import { OWNER_LOCAL, currentActor, runAs } from '../audit/actor.ts';
import type { FlowRecord } from '../storage/types.ts';
import type { GenerationCache, Snapshot } from '../storage/generation-cache.ts';
import { Scrubber } from './scrub/scrubber.ts';
import { ReachableSecrets } from './reachable-secrets.ts';
import { OpenAnswers } from './open-answers.ts';
import { ACCEPT_ENCODING, bodyOf, outcomeRecorder, scrubbedResponse, type Outcome } from './respond.ts';
import { UpstreamClient, clientCertAgent, upstreamError, type ClientTlsOptions, type UpstreamRequest } from './upstream.ts';
import type { Agent, Dispatcher } from 'undici';

/**
 * What a signing strategy would sign with the owner's key is the capability's to allow: agent
 * headers in its namespace are dropped unless the capability names them, and parameters of
 * the signature itself are refused.
 */
function assertSignable(strategy: AuthStrategy, capability: ResolvedCapability, target: Target, headers: Map<string, string>): void {
  const signs = strategy.signs;
  if (!signs) return;
  for (const name of target.url.searchParams.keys()) {
    if (signs.queryParam(name)) throw new AivaultError('MALFORMED_URL', `query parameter ${name.slice(0, 64)} belongs to the request signature; aivault refuses it`);
  }
  for (const name of [...headers.keys()]) if (signs.header(cgiName(name)) && !headerAllowed(capability.signedHeaders, name)) headers.delete(name);
}

export interface InvokeRequest {
  capability: string;
  method: string;
  /** Absolute URL, instead of host + path. */
  url?: string;
  host?: string;
  path?: string;
  query?: ReadonlyArray<readonly [string, string]>;
  headers?: ReadonlyArray<readonly [string, string]>;
  body?: Uint8Array;
}

/** What was sent, for people and LLM-shaped output: secrets in the URL are redacted. */
export interface PlannedRequest {
  capability: string;
  credential: string;
  method: string;
  url: string;
}

export interface InvokeResponse {
  status: number;
  planned: PlannedRequest;
  headers: Array<[string, string]>;
  /** The response body: decoded, size-capped, scrubbed. */
  readonly body: Readable;
  /** The whole body at once, for a small answer (respond.ts; undefined: read `body` after all): read it or `body`, not both. */
  whole?: Promise<Buffer | undefined>;
  /** Scrubs text made from the body (a rendering), as the body was. */
  scrubText(text: string): string;
  auditSeq: number;
  /** Settles when the body has been consumed (or failed) and its outcome queued for audit. */
  done: Promise<void>;
}

export interface InvokeContext {
  /** The authenticated agent asking; its grant is checked. Without one, the owner is asking. */
  agent?: AgentRecord;
  /** Aborted when the asker goes away (ends a wait for owner approval). */
  signal?: AbortSignal;
  /**
   * The owner's execution context (`workspace:W`, `group:W/G`), which picks the secrets.
   * An agent always runs in the context the owner bound it to; this is ignored for agents.
   */
  scope?: string;
  /**
   * The caller reads the whole body before it shows any of it (it renders or parses it): the
   * scrubber then releases nothing on a timer, so a secret that arrives slowly is found whole.
   */
  whole?: boolean;
  /**
   * The vault as the request found it (read once, when it arrived: see generation-cache.ts);
   * without one, admission reads it.
   */
  at?: Snapshot;
}

/** The context whose secrets a request may use: the agent's own, or what the owner asked for. */
export function executionContext(context: InvokeContext): string {
  const scope = context.agent ? (context.agent.context ?? GLOBAL_SCOPE) : (context.scope ?? GLOBAL_SCOPE);
  assertScope(scope);
  return scope;
}

/** What the allow record names as its target: the credential used, where its secrets live, for whom. */
function credentialTarget(credential: ResolvedCredential, execution: string): string {
  const where = credential.scope === GLOBAL_SCOPE ? '' : `@${credential.scope}`;
  return `credential:${credential.name}${where}${execution === GLOBAL_SCOPE ? '' : ` for ${execution}`}`;
}

/** What a request's own answer is scrubbed of: the credential's values, what the strategy injected, the owner's block list. */
function ownValues(secrets: ReadonlyMap<string, string>, injected: readonly string[], capability?: ResolvedCapability): string[] {
  return [...secrets.values(), ...injected, ...(capability?.policy?.responseBlock ?? [])];
}

/** The URL as the caller addressed it: an endpoint override's target (an internal gateway) stays the owner's business. */
function addressedUrl(sent: URL, addressedOrigin: string | undefined): string {
  return addressedOrigin ? `${addressedOrigin}${sent.pathname}${sent.search}` : sent.href;
}

/** Refuses a credential whose secrets exist but may not serve this caller. */
function assertInScope(credential: ResolvedCredential, execution: string): void {
  if (credential.outOfScope.length > 0) {
    throw new AivaultError('SECRET_OUT_OF_SCOPE', `${credential.outOfScope.join(', ')} may not be used in ${execution} (a global secret serves a group only once attached: aivault secrets attach-group)`);
  }
}

/** Who is asking, as the audit names them: the agent, else the owner whose session this runs in. */
function actorOf(context: InvokeContext): string {
  return context.agent ? `agent:${context.agent.id}` : (currentActor() ?? OWNER_LOCAL);
}

/** A flow sends a credential's secret only where an invoke could: one of its hosts, over plain http only if it allows. */
function assertFlowReaches(credential: ResolvedCredential, url: URL, hostname: string): void {
  const port = portOf(url.port, url.protocol);
  if (!credential.hosts.some((h) => hostMatches(h, hostname, port, defaultPort(url.protocol)))) {
    throw new AivaultError('HOST_NOT_ALLOWED', `the flow's target is not among the hosts of credential ${credential.name}`);
  }
  if (url.protocol === 'http:' && !credential.allowHttp) throw new AivaultError('INSECURE_SCHEME', `credential ${credential.name} does not allow plain http`);
}

/** The fields of a deny or allow record that say who tried what, where. */
interface AuditSubject {
  actor: string;
  capability: string;
  method?: string;
  host?: string | null;
  path?: string | null;
}

/** A flow every rule admitted, with what sending it needs. */
interface AdmittedFlow {
  started: number;
  actor: string;
  execution: string;
  flow: FlowRecord;
  url: URL;
  /** The credential it sends, ready, with its strategy and secret values. */
  credential: { resolved: ResolvedCredential; strategy: AuthStrategy; secrets: Map<string, string> } | undefined;
  allowPrivateNetwork: boolean;
  approval: ApprovalRecord | null;
}

const METHOD_TOKEN = /^[A-Z]+$/;

/** Scrubs nothing: for an answer no one is shown. */
const UNSCRUBBED = new Scrubber([]);

/** Whose request goes upstream, and what it is shown (OpenAnswers widens what is open to that). */
interface Sender {
  context: InvokeContext;
  execution: string;
  scrubber: Scrubber;
  /** The generation its set was built at (undefined: read it now). */
  generation: number | undefined;
}

/** An answer kept widened (Broker #keepOpen). */
interface OpenAnswer {
  /** `base` with every widening so far. */
  shown(base: Scrubber): Scrubber;
  /** The answer, once it exists: it gets the widenings so far, then each later one. */
  attach(widen: (wider: Scrubber) => void): void;
  close(): void;
}

const OWNER_ANSWER: OpenAnswer = { shown: (base) => base, attach: () => {}, close: () => {} };

/** Whose answers these are: an agent (in whatever context it is bound to now); the owner's own have none. */
function readerOf(context: InvokeContext): string | undefined {
  return context.agent?.id;
}

/** The path as recorded: query parameter names kept, values dropped. */
function auditPath(target: Target, agentQuery: ReadonlyArray<readonly [string, string]>): string {
  const names = [...new Set(agentQuery.map(([k]) => k))];
  return names.length > 0 ? `${target.path}?${names.map((n) => encodeURIComponent(n)).join('&')}` : target.path;
}

/** What a denial records of where the agent tried to go: printable, bounded, no query. */
function attempted(request: InvokeRequest): { host: string | null; path: string | null } {
  const printable = (v: string | undefined) => (v !== undefined && /^[\x21-\x7e]{1,512}$/.test(v) ? v : null);
  if (request.url !== undefined) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)([^?#]*)/.exec(request.url);
    return { host: printable(m?.[1]), path: printable(m?.[2] || undefined) };
  }
  return { host: printable(request.host), path: printable(request.path) };
}

/** An admitted WebSocket upgrade: where to connect, with what, and how to scrub what comes back. */
export interface WebSocketPlan {
  /** ws: or wss:, with any query credential applied. */
  url: URL;
  /** Upgrade request headers: the caller's (sanitised) and the credential's. */
  headers: Record<string, string>;
  /** mTLS: the client certificate and key to present. */
  tls: ClientTlsOptions | undefined;
  allowPrivateNetwork: boolean;
  connectTimeoutMs: number;
  maxServerMessageBytes: number;
  maxClientMessageBytes: number;
  scrubber: Scrubber;
  planned: PlannedRequest;
  auditSeq: number;
  /** The vault's generation read before the session was admitted: a later one may have withdrawn it. */
  generation: number;
  /** When the grant that admitted the session expires (ms since the epoch), if it does. */
  expiresAt: number | null;
  /**
   * Re-checks what admitted the session (agent, grant, capability allowing WebSockets): the
   * refusal now, or the grant's expiry and the scrubber for what the agent can now reach
   * (a new grant or a rotated secret widens it).
   */
  standing(): Promise<{ refused: AivaultError } | { expiresAt: number | null; scrubber: Scrubber }>;
  /** The relay's message scrubbing, once it exists: widened since the upgrade, and before any later request goes upstream, until `finish`. */
  attach(widen: (wider: Scrubber) => void): void;
  /** Records how the session ended; once. */
  finish(outcome: { bytesIn: number; bytesOut: number; status?: number; error?: string }): void;
}

/** A capability an agent was granted, as it may see it. */
export interface GrantedCapability {
  capability: ResolvedCapability;
  methods: string[];
  expiresAt: string | null;
}

/** A request every rule admitted, with what sending it needs. */
interface Admitted {
  started: number;
  actor: string;
  method: string;
  execution: string;
  prepared: Prepared;
  capability: ResolvedCapability;
  target: Target;
  headers: Map<string, string>;
  addressedOrigin: string | undefined;
  approval: ApprovalRecord | null;
  /** The agent's grant that admitted the request (none for the owner's own calls). */
  grant: GrantRecord | undefined;
}

/** What an invoke derives from storage; cached until the vault's generation changes. */
interface Prepared {
  generation: number;
  capability: ResolvedCapability;
  strategy: AuthStrategy;
  /** Placeholder -> value; only when the credential is ready. */
  secrets: ReadonlyMap<string, string> | undefined;
  /** The owner's scrubber for the last set of injected values (reused while they repeat); an agent's is ReachableSecrets'. */
  scrubber?: { key: string; scrubber: Scrubber };
  /** mTLS: this credential's own connection pool, presenting its client certificate. */
  dispatcher?: Agent;
}

/** An exchange's signal, and `end`, called once it has settled. */
interface Exchange {
  signal: AbortSignal;
  end(): void;
}

/**
 * An exchange ends at its deadline, or when its caller goes away: an answer nobody reads is
 * not worth the upstream's work, nor the slot and memory it holds. Its deadline timer goes
 * when it settles (AbortSignal.timeout's would outlive every request by the whole timeout).
 */
function exchange(timeoutMs: number, caller: AbortSignal | undefined): Exchange {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new AivaultError('UPSTREAM_TIMEOUT', 'the upstream did not answer in time')), timeoutMs);
  timer.unref();
  const hangUp = () => controller.abort(caller!.reason);
  if (caller?.aborted) hangUp();
  else caller?.addEventListener('abort', hangUp, { once: true });
  return {
    signal: controller.signal,
    end: () => {
      clearTimeout(timer);
      caller?.removeEventListener('abort', hangUp);
    },
  };
}

/** What the broker works with, built once by composeServices (src/services.ts). */
export interface BrokerDeps {
  vault: Vault;
  catalog: Catalog;
  agents: Agents;
  approvals: Approvals;
  oauth: OAuthTokens;
  /** Its connection pools; the broker closes them. */
  upstream: UpstreamClient;
  reads: GenerationCache;
}

export class Broker {
  readonly #vault: Vault;
  readonly #catalog: Catalog;
  readonly #upstream: UpstreamClient;
  readonly #prepared = new Map<string, Prepared>();
  readonly #oauth: OAuthTokens;
  readonly #agents: Agents;
  readonly #approvals: Approvals;
  readonly #limiter: RateLimiter;
  readonly #reachable: ReachableSecrets;
  /** Answers still streaming to agents: widened before anything new goes upstream. */
  readonly #open = new OpenAnswers();
  readonly #reads: GenerationCache;

  /**
   * The capability, its strategy and its secret values at `generation` (the request's), from
   * cache when nothing changed since: a rotation, deletion or revocation made by any process
   * applies to the very next request.
   */
  async #prepare(id: string, execution: string, generation: number): Promise<Prepared> {
    const key = `${id} ${execution}`;
    const cached = this.#prepared.get(key);
    if (cached && cached.generation === generation) return cached;
    const capability = await this.#catalog.resolveCapability(id, execution);
    const auth = capability.credential.auth;
    const strategy = createStrategy(auth, typeof auth === 'object' && 'o_auth2' in auth ? { tokens: this.#oauth.source(capability.credential, auth.o_auth2) } : {});
    const secrets = capability.credential.missing.length === 0 ? await this.#reveal(capability.credential) : undefined;
    const prepared: Prepared = { generation, capability, strategy, secrets };
    if (secrets && strategy.tls) {
      prepared.dispatcher = clientCertAgent(strategy.tls(secrets), capability.credential.allowPrivateNetwork, capability.limits.connectTimeoutMs);
    }
    if (this.#prepared.size >= 1024) this.#evict([...this.#prepared.keys()]);
    // A rotated certificate gets a new pool; the old one closes once its requests finish.
    if (cached) this.#evict([key]);
    this.#prepared.set(key, prepared);
    return prepared;
  }

  /** A ready credential's secret values, by placeholder. */
  async #reveal(credential: ResolvedCredential): Promise<Map<string, string>> {
    const secrets = new Map<string, string>();
    for (const [placeholder, secretId] of credential.bindings) {
      const value = await this.#vault.revealSecret(secretId, { credential: true });
      secrets.set(placeholder, value.toString('utf8'));
      value.fill(0);
    }
    return secrets;
  }

  #evict(ids: readonly string[]): void {
    for (const id of ids) {
      void this.#prepared.get(id)?.dispatcher?.close().catch(() => {});
      this.#prepared.delete(id);
    }
  }

  constructor(deps: BrokerDeps) {
    this.#vault = deps.vault;
    this.#catalog = deps.catalog;
    this.#agents = deps.agents;
    this.#approvals = deps.approvals;
    this.#oauth = deps.oauth;
    this.#upstream = deps.upstream;
    this.#reads = deps.reads;
    this.#limiter = new RateLimiter(deps.vault.storage);
    this.#reachable = new ReachableSecrets(deps.vault, deps.catalog, deps.oauth);
    // A token request goes upstream from inside a strategy, before the request's own send.
    deps.oauth.beforeEachRequest(() => this.#cover());
  }

  /**
   * The scrubber for what the caller is shown: an agent's holds every secret it can make
   * aivault send (reachable-secrets.ts) besides `own`, this request's; the owner's, `own`.
   */
  async #scrubberFor(context: InvokeContext, execution: string, generation: number | undefined, own: string[]): Promise<Scrubber> {
    if (!context.agent) return new Scrubber(own);
    return this.#reachable.scrubber(context.agent, execution, generation ?? (await this.#vault.storage.generation()), own);
  }

  /**
   * Runs an owner-defined flow: the agent supplies at most a body; the target, method and
   * what happens to the answer are the owner's. An acquired secret goes into the vault and
   * the agent gets only a redacted shape. Admitted, recorded, sent and answered as an invoke
   * is (the same deny and allow records, upstream send and response stage).
   */
  async runFlow(id: string, input: { body?: Uint8Array; contentType?: string }, context: InvokeContext = {}): Promise<FlowResult> {
    const a = await this.#admitFlow(id, input, context);
    const { flow, url, credential } = a;
    const seq = await this.#recordAllow({ actor: a.actor, capability: flow.id, method: flow.method, host: url.hostname, path: url.pathname }, 'flow.run', { ...a, credential: credential?.resolved });
    const record = outcomeRecorder(this.#vault.audit, seq, a.started, input.body?.byteLength ?? 0);
    let outcome: Outcome = {};
    let ex: Exchange | undefined;
    let open: OpenAnswer | undefined;
    try {
      const headers = new Map<string, string>([['accept', 'application/json']]);
      if (input.contentType) headers.set('content-type', input.contentType);
      const outbound: OutboundRequest = { method: flow.method, url: new URL(url), headers, body: input.body ? Buffer.from(input.body) : undefined };
      const secrets = credential?.secrets ?? new Map<string, string>();
      const injected = credential ? await credential.strategy.apply(outbound, secrets) : [];
      const scrubber = await this.#scrubberFor(context, a.execution, undefined, ownValues(secrets, injected));
      open = this.#keepOpen(context);
      const { timeoutMs, connectTimeoutMs } = DEFAULT_LIMITS;
      ex = exchange(timeoutMs, context.signal);
      const signal = ex.signal;
      const response = await this.#send(outbound, { allowPrivateNetwork: a.allowPrivateNetwork, connectTimeoutMs, timeoutMs }, signal, { context, execution: a.execution, scrubber, generation: undefined });
      // An acquire's body is never shown (only acquiredShape, which echoes nothing the
      // upstream chose), and its secret is stored as sent: so it is read unscrubbed.
      const answer = scrubbedResponse(response, { scrubber: acquires(flow) ? UNSCRUBBED : open.shown(scrubber), limit: FLOW_MAX_BYTES, whole: true, signal, settle: (o) => (outcome = o) });
      if (!acquires(flow)) open.attach(answer.widen);
      const body = await bodyOf(answer);
      await answer.done;
      const result = await flowResult(flow, { status: response.statusCode, contentType: response.headers['content-type'], body }, open.shown(scrubber), (value) => runAs(a.actor, () => storeAcquired(this.#vault, flow, value)));
      record(outcome);
      return result;
    } catch (err) {
      const e = err instanceof AivaultError ? err : upstreamError(err);
      record({ ...outcome, error: e.code });
      throw e;
    } finally {
      ex?.end();
      open?.close();
    }
  }

  /** Every check that can refuse a flow, before anything is sent; a refusal is audited and thrown. */
  async #admitFlow(id: string, input: { body?: Uint8Array; contentType?: string }, context: InvokeContext): Promise<AdmittedFlow> {
    const started = performance.now();
    const actor = actorOf(context);
    let flow: FlowRecord | undefined;
    try {
      flow = await this.#vault.storage.getFlow(id);
      // The grant is checked before the flow's existence, so an agent learns nothing about
      // flows it was not granted: an unknown one and an ungranted one are refused alike.
      let grant: GrantRecord | undefined;
      if (context.agent) grant = await this.#agents.authorize(context.agent, id, flow?.method ?? 'POST', this.#limiter);
      if (!flow) throw new AivaultError('FLOW_NOT_FOUND', `no flow ${id.slice(0, 130)}`);
      const url = new URL(flow.target);
      const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const execution = executionContext(context);
      let credential: AdmittedFlow['credential'];
      if (flow.credential) {
        const resolved = await this.#catalog.describeCredential(flow.credential, execution);
        assertFlowReaches(resolved, url, hostname);
        assertInScope(resolved, execution);
        if (resolved.missing.length > 0) throw new AivaultError('CREDENTIAL_NOT_READY', `the flow's credential is missing ${resolved.missing.join(', ')}`);
        credential = { resolved, strategy: createStrategy(resolved.auth), secrets: await this.#reveal(resolved) };
      }
      // The stricter of the flow's and its credential's policies.
      const allowPrivateNetwork = flow.allowPrivateNetwork && (credential?.resolved.allowPrivateNetwork ?? true);
      if (isIpLiteral(hostname)) assertAddressAllowed(hostname, { allowPrivateNetwork, port: portOf(url.port, url.protocol) });
      if (input.body && input.body.byteLength > FLOW_MAX_BYTES) throw new AivaultError('REQUEST_TOO_LARGE', `a flow body may hold at most ${FLOW_MAX_BYTES} bytes`);
      if (input.contentType !== undefined && !/^[\x20-\x7e]{1,200}$/.test(input.contentType)) throw new AivaultError('MALFORMED_HEADER', 'the content type is not a header value');
      assertNoMethodOverride('', input.contentType === undefined ? [] : [input.contentType], input.body);
      // Last, as for an invoke: the owner is asked only about a flow every other rule admits.
      let approval: ApprovalRecord | null = null;
      if (context.agent && grant && this.#approvals.needed(grant)) {
        const scrubber = new Scrubber(credential?.secrets.values() ?? []);
        const shown = approvalDetails({ agentName: context.agent.name, method: flow.method, url: url.href, headers: input.contentType ? [['content-type', input.contentType]] : [], body: input.body }, (text) => scrubber.scrubText(text));
        approval = await this.#approvals.await(context.agent, grant, { capability: flow.id, method: flow.method, host: url.hostname, path: url.pathname, details: shown }, context.signal);
      }
      return { started, actor, execution, flow, url, credential, allowPrivateNetwork, approval };
    } catch (err) {
      if (!(err instanceof AivaultError)) throw err;
      const url = flow ? new URL(flow.target) : undefined;
      return this.#deny({ actor, capability: id.slice(0, 200), ...(flow && url ? { method: flow.method, host: url.hostname, path: url.pathname } : {}) }, 'flow.run', started, err);
    }
  }

  /** The capabilities an agent holds a live grant for, as it may see them (at `at`, the request's snapshot). */
  async grantedCapabilities(agent: AgentRecord, at?: Snapshot): Promise<GrantedCapability[]> {
    at ??= await this.#reads.snapshot();
    const all = await at.memo(`granted ${agent.id} ${agent.context ?? GLOBAL_SCOPE}`, () => this.#granted(agent));
    // Expiry is a matter of time, not of generation: checked on every call.
    const now = Date.now();
    return all.filter((g) => !grantExpired(g, now));
  }

  async #granted(agent: AgentRecord): Promise<GrantedCapability[]> {
    const out = [];
    for (const grant of await this.#vault.storage.listGrants(agent.id)) {
      try {
        const capability = await this.#catalog.resolveCapability(grant.capability, agent.context ?? GLOBAL_SCOPE);
        out.push({ capability, methods: grant.methods ?? [...capability.methods], expiresAt: grant.expiresAt });
      } catch {
        // a grant for a capability that no longer exists
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.#evict([...this.#prepared.keys()]);
    await this.#upstream.close();
  }

  /**
   * Steps 1-6: every check that can refuse, before anything is sent; a refusal is audited
   * and thrown. `websocket`: the request is a WebSocket upgrade, which the capability must allow.
   */
  async #admit(request: InvokeRequest, context: InvokeContext, websocket = false): Promise<Admitted> {
    const started = performance.now();
    const actor = actorOf(context);
    const method = request.method.toUpperCase();
    const execution = executionContext(context);
    let target: Target | undefined;
    try {
      if (!METHOD_TOKEN.test(method)) throw new AivaultError('METHOD_NOT_ALLOWED', 'the method is not an HTTP method name');
      const at = context.at ?? (await this.#reads.snapshot());
      let grant: GrantRecord | undefined;
      if (context.agent) grant = await this.#agents.authorize(context.agent, request.capability, method, this.#limiter, at);
      const prepared = await this.#prepare(request.capability, execution, at.generation);
      const capability = prepared.capability;
      if (!capability.methods.includes(method)) {
        throw new AivaultError('METHOD_NOT_ALLOWED', `${method} is not allowed for ${capability.id} (allowed: ${capability.methods.join(', ')})`);
      }
      if (websocket && !capability.websocket) throw new AivaultError('WEBSOCKET_NOT_ALLOWED', `${capability.id} does not allow WebSocket connections`);
      const credential = capability.credential;
      target = resolveTarget({ hosts: capability.hosts, pathPrefixes: capability.pathPrefixes, allowHttp: credential.allowHttp && credential.hostMap.size === 0 }, request);
      if (credential.source === 'builtin') assertTenant(capability.hosts, credential.tenants, target.hostname);
      // An alternative's own endpoint is shown as is; an owner's override is not (a stand-in).
      if (credential.route) target = routeTarget(target, credential.route);
      /** The provider origin the caller addressed, when an endpoint override sends it elsewhere. */
      let addressedOrigin: string | undefined;
      const replacement = credential.hostMap.get(target.hostname.replace(/\.$/, ''));
      if (replacement) {
        addressedOrigin = target.url.origin;
        target = redirectTarget(target, replacement, credential.allowHttp);
      }
      assertInScope(credential, execution);
      if (credential.missing.length > 0) {
        throw new AivaultError('CREDENTIAL_NOT_READY', `${capability.id} is not ready: missing ${credential.missing.join(', ')}`);
      }
      if (isIpLiteral(target.hostname)) assertAddressAllowed(target.hostname, { allowPrivateNetwork: credential.allowPrivateNetwork, port: portOf(target.url.port, target.url.protocol) });
      const headers = sanitizeAgentHeaders(request.headers ?? [], prepared.strategy.ownedHeaders, capability.overrideHeaders);
      assertSignable(prepared.strategy, capability, target, headers);
      assertNoMethodOverride(target.url.search, valuesNamed(headers, 'content-type'), request.body, valuesNamed(headers, 'content-encoding'));
      for (const name of prepared.strategy.ownedQueryParams) target.url.searchParams.delete(name);
      if (request.body && request.body.byteLength > capability.limits.maxRequestBytes) {
        throw new AivaultError('REQUEST_TOO_LARGE', `the request body is larger than the capability's limit of ${capability.limits.maxRequestBytes} bytes`);
      }
      // The owner's rate for the whole capability: one budget for every caller and process,
      // spent only by requests every other rule admits.
      const perMinute = capability.policy?.rateLimitPerMinute;
      if (perMinute) {
        const decision = await this.#limiter.take(`capability ${capability.id}`, { count: perMinute, periodMs: 60_000 });
        if (!decision.allowed) throw new RateLimitedError(decision.retryAfter);
      }
      // Last: the owner is asked only about a request every other rule admits.
      let approval: ApprovalRecord | null = null;
      if (context.agent && grant && this.#approvals.needed(grant)) {
        const scrubber = new Scrubber(ownValues(prepared.secrets!, [], capability));
        const shown = approvalDetails({ agentName: context.agent.name, method, url: addressedUrl(target.url, addressedOrigin), headers: [...headers], body: request.body }, (text) => scrubber.scrubText(text));
        approval = await this.#approvals.await(context.agent, grant, { capability: capability.id, method, host: target.hostname, path: auditPath(target, request.query ?? []), details: shown }, context.signal);
      }
      const t = target;
      return { started, actor, method, execution, prepared, capability, target: t, headers, addressedOrigin, approval, grant };
    } catch (err) {
      if (!(err instanceof AivaultError)) throw err;
      const where = target ? { host: target.hostname, path: auditPath(target, request.query ?? []) } : attempted(request);
      return this.#deny({ actor, capability: request.capability.slice(0, 200), method: method.slice(0, 16), ...where }, websocket ? 'websocket' : 'invoke', started, err);
    }
  }

  /** Who asked for what, where, as an invoke's records name it (query values dropped). */
  #subject(a: Admitted, request: InvokeRequest): AuditSubject {
    return { actor: a.actor, capability: a.capability.id, method: a.method, host: a.target.hostname, path: auditPath(a.target, request.query ?? []) };
  }

  /**
   * A gateway request that no capability the agent holds serves (its provider, method or path
   * is granted nowhere): refused and recorded like an invoke the rules refuse, so probing
   * leaves a trace. `provider` is named as the capability tried (`provider/*`).
   */
  refuseUnserved(agent: AgentRecord, tried: { provider: string; method: string; path: string }, websocket: boolean, err: AivaultError): Promise<never> {
    const subject = { actor: `agent:${agent.id}`, capability: `${tried.provider.slice(0, 64)}/*`, method: tried.method.slice(0, 16), host: null, path: tried.path };
    return this.#deny(subject, websocket ? 'websocket' : 'invoke', performance.now(), err);
  }

  /** A refusal: recorded (fail closed), then thrown. */
  async #deny(subject: AuditSubject, action: 'invoke' | 'websocket' | 'flow.run', started: number, err: AivaultError): Promise<never> {
    await this.#vault.audit.append({ ...subject, action, decision: 'deny', reason: err.code }, { durationMs: Math.round(performance.now() - started) });
    throw err;
  }

  /** Step 9, before any byte goes upstream (fail closed): the allow record, naming the credential sent and any approval. */
  #recordAllow(subject: AuditSubject, action: 'invoke' | 'websocket' | 'flow.run', a: { execution: string; approval: ApprovalRecord | null; credential?: ResolvedCredential | undefined }): Promise<number> {
    return this.#vault.audit.append({
      ...subject,
      action,
      ...(a.credential ? { target: credentialTarget(a.credential, a.execution) } : {}),
      decision: 'allow',
      ...(a.approval ? { reason: `approved ${a.approval.id} by ${a.approval.decidedBy}` } : {}),
    });
  }

  /** Steps 7-8: the one upstream send (never following redirects), offering only encodings the response stage decodes. */
  /**
   * Sends `outbound` upstream, once every open answer that could receive what it carries is
   * widened (open-answers.ts): `sender` is whose request it is, `scrubber` what it is shown.
   */
  async #send(outbound: OutboundRequest, policy: Omit<UpstreamRequest, 'url' | 'method' | 'headers' | 'body'>, signal: AbortSignal, sender: Sender): Promise<Dispatcher.ResponseData> {
    await this.#cover(sender);
    outbound.headers.set('accept-encoding', ACCEPT_ENCODING);
    return this.#upstream.send({ url: outbound.url, method: outbound.method, headers: Object.fromEntries(outbound.headers), body: outbound.body, ...policy }, signal);
  }

  /**
   * Widens every open answer before `sender`'s request goes upstream; without a sender (a token
   * request), each to what its agent reaches at the vault's current generation.
   */
  async #cover(sender?: Sender): Promise<void> {
    if (this.#open.size === 0) return;
    // Other readers' sets at the newest generation any request has seen: one a stale sender
    // read would be rebuilt from storage for every reader, at every such send.
    const generation = Math.max(sender?.generation ?? (await this.#vault.storage.generation()), this.#reads.newest);
    await this.#open.cover(sender && readerOf(sender.context), sender?.scrubber ?? UNSCRUBBED, generation);
  }

  /**
   * Keeps an answer to `context`'s agent widened from before its request is sent until
   * `close`. Widenings that come before the answer exists are kept: `shown(base)` is the set
   * with them, and `attach` hands them to the answer, then every later one.
   */
  #keepOpen(context: InvokeContext): OpenAnswer {
    // The owner's own answers are scrubbed of what their request used, nothing more.
    if (!context.agent) return OWNER_ANSWER;
    let widened: Scrubber | undefined;
    let attached: ((wider: Scrubber) => void) | undefined;
    const agent = context.agent;
    const close = this.#open.add({
      reader: readerOf(context),
      // What the agent reaches now, in the context it is bound to now (a rebinding since the
      // answer opened adds the new context's set to what the answer already scrubs).
      reach: async (generation) => {
        const now = await this.#reads.at(generation).memo(`open answers: agent ${agent.id}`, () => this.#agents.get(agent.id)).catch(() => agent);
        return this.#scrubberFor({ agent: now }, executionContext({ agent: now }), generation, []);
      },
      widen: (wider) => {
        widened = widened ? widened.union(wider) : wider;
        attached?.(wider);
      },
    });
    // The last union asked for: an answer's own set with the same widenings is asked for again.
    let last: { base: Scrubber; from: Scrubber; shown: Scrubber } | undefined;
    return {
      shown: (base) => {
        if (!widened) return base;
        if (last?.base !== base || last.from !== widened) last = { base, from: widened, shown: base.union(widened) };
        return last.shown;
      },
      attach: (widen) => {
        attached = widen;
        if (widened) widen(widened);
      },
      close,
    };
  }

  /**
   * Admits a WebSocket upgrade (GET, a capability that allows it) exactly as an invoke is
   * admitted, records the allow, and returns what the relay needs: the upstream URL and
   * upgrade headers with the credential applied, and the scrubber for server messages.
   */
  async openWebSocket(request: InvokeRequest, context: InvokeContext = {}): Promise<WebSocketPlan> {
    // Read first: a change made while the session is admitted shows as a later generation.
    const at = context.at ?? (await this.#reads.snapshot());
    const generation = at.generation;
    const admitted = await this.#admit({ ...request, method: 'GET' }, { ...context, at }, true);
    const { started, prepared, capability, target, headers } = admitted;
    const seq = await this.#recordAllow(this.#subject(admitted, request), 'websocket', { ...admitted, credential: capability.credential });
    const secrets = prepared.secrets!;
    const outbound: OutboundRequest = { method: 'GET', url: new URL(target.url), headers: new Map(headers), body: undefined };
    let scrubber: Scrubber;
    let own: string[];
    // Open from before the upgrade goes upstream until the session ends (`finish`).
    const open = this.#keepOpen(context);
    try {
      own = ownValues(secrets, await prepared.strategy.apply(outbound, secrets), capability);
      scrubber = await this.#scrubberFor(context, admitted.execution, prepared.generation, own);
      // The upgrade carries the credential upstream: what is open is widened first.
      await this.#cover({ context, execution: admitted.execution, scrubber, generation: prepared.generation });
    } catch (err) {
      open.close();
      const e = err instanceof AivaultError ? err : upstreamError(err);
      this.#vault.audit.complete(seq, { durationMs: Math.round(performance.now() - started), error: e.code });
      throw e;
    }
    const toWs = (href: string) => href.replace(/^http/, 'ws');
    const url = new URL(toWs(outbound.url.href));
    let finished = false;
    return {
      url,
      headers: Object.fromEntries(outbound.headers),
      tls: secrets && prepared.strategy.tls ? prepared.strategy.tls(secrets) : undefined,
      allowPrivateNetwork: capability.credential.allowPrivateNetwork,
      connectTimeoutMs: capability.limits.connectTimeoutMs,
      maxServerMessageBytes: capability.limits.maxResponseBytes,
      maxClientMessageBytes: capability.limits.maxRequestBytes,
      scrubber,
      planned: { capability: capability.id, credential: capability.credential.name, method: 'GET', url: scrubber.scrubText(toWs(addressedUrl(outbound.url, admitted.addressedOrigin))) },
      auditSeq: seq,
      generation,
      expiresAt: admitted.grant?.expiresAt ? Date.parse(admitted.grant.expiresAt) : null,
      standing: () => this.#webSocketStanding(capability.id, admitted.execution, context, own),
      attach: open.attach,
      finish: (outcome) => {
        if (finished) return;
        finished = true;
        open.close();
        this.#vault.audit.complete(seq, { bytesIn: outcome.bytesIn, bytesOut: outcome.bytesOut, durationMs: Math.round(performance.now() - started), ...(outcome.status ? { status: outcome.status } : {}), ...(outcome.error ? { error: outcome.error } : {}) });
      },
    };
  }

  /** Whether an open WebSocket session would still be admitted, bar the per-request checks (rates, approval); `own`: what its upgrade sent. */
  async #webSocketStanding(id: string, execution: string, context: InvokeContext, own: string[]): Promise<{ refused: AivaultError } | { expiresAt: number | null; scrubber: Scrubber }> {
    try {
      const grant = context.agent ? await this.#agents.grantInForce(context.agent, id, 'GET') : undefined;
      const capability = await this.#catalog.resolveCapability(id, execution);
      if (!capability.websocket || !capability.methods.includes('GET')) throw new AivaultError('WEBSOCKET_NOT_ALLOWED', `${capability.id} no longer allows WebSocket connections`);
      return { expiresAt: grant?.expiresAt ? Date.parse(grant.expiresAt) : null, scrubber: await this.#scrubberFor(context, execution, undefined, own) };
    } catch (err) {
      if (err instanceof AivaultError && err.code !== 'STORAGE_UNAVAILABLE') return { refused: err };
      throw err;
    }
  }

  async invoke(request: InvokeRequest, context: InvokeContext = {}): Promise<InvokeResponse> {
    const admitted = await this.#admit(request, context);
    const { started, method, prepared, capability, target, headers, addressedOrigin } = admitted;
    const seq = await this.#recordAllow(this.#subject(admitted, request), 'invoke', { ...admitted, credential: capability.credential });
    const record = outcomeRecorder(this.#vault.audit, seq, started, request.body?.byteLength ?? 0);
    const ex = exchange(capability.limits.timeoutMs, context.signal);
    const signal = ex.signal;
    const settle = (outcome: Outcome) => {
      ex.end();
      record(outcome);
    };

    // Steps 6-8: apply the credential, send, never follow redirects.
    const secrets = prepared.secrets!;
    const baseHeaders = new Map(headers);
    let scrubber!: Scrubber;
    let injected: string[] = [];
    let sent!: URL;
    const attempt = async () => {
      // Each attempt starts from the agent's request: a strategy may sign what it sends.
      const outbound: OutboundRequest = { method, url: new URL(target.url), headers: new Map(baseHeaders), body: request.body ? Buffer.from(request.body) : undefined };
      injected = await prepared.strategy.apply(outbound, secrets);
      sent = outbound.url;
      if (context.agent) {
        scrubber = await this.#scrubberFor(context, admitted.execution, prepared.generation, ownValues(secrets, injected, capability));
      } else {
        const key = injected.join('\u0000');
        if (prepared.scrubber?.key !== key) prepared.scrubber = { key, scrubber: new Scrubber(ownValues(secrets, injected, capability)) };
        scrubber = prepared.scrubber.scrubber;
      }
      const { connectTimeoutMs, timeoutMs } = capability.limits;
      return this.#send(outbound, { allowPrivateNetwork: capability.credential.allowPrivateNetwork, connectTimeoutMs, timeoutMs, ...(prepared.dispatcher ? { dispatcher: prepared.dispatcher } : {}) }, signal, { context, execution: admitted.execution, scrubber, generation: prepared.generation });
    };
    // Open from before it is sent: a request of this agent's sent while this one waits for
    // its answer widens what it is scrubbed for, answer or not (open-answers.ts).
    const open = this.#keepOpen(context);
    let response;
    let answer;
    try {
      response = await attempt();
      // An OAuth access token the upstream rejects is refreshed once, and the request
      // retried once: never a loop.
      const tokens = (prepared.strategy as Partial<OAuth2Strategy>).tokens;
      if (response.statusCode === 401 && tokens) {
        response.body.on('error', () => {}).destroy();
        await tokens.invalidate(injected[0] ?? '');
        response = await attempt();
      }
    } catch (err) {
      open.close();
      const e = err instanceof AivaultError ? err : upstreamError(err, signal);
      settle({ error: e.code });
      throw e;
    }
    try {
      // (settled by itself when it refuses the answer)
      answer = scrubbedResponse(response, { scrubber: open.shown(scrubber), limit: capability.limits.maxResponseBytes, whole: context.whole === true, signal, settle });
    } catch (err) {
      open.close();
      throw err;
    }
    open.attach(answer.widen);
    void answer.done.finally(open.close).catch(() => {});
    const planned = { capability: capability.id, credential: capability.credential.name, method, url: scrubber.scrubText(addressedUrl(sent, addressedOrigin)) };
    const s = scrubber;
    return {
      status: response.statusCode,
      planned,
      headers: answer.headers,
      get body() {
        return answer.body;
      },
      ...(answer.whole ? { whole: answer.whole } : {}),
      scrubText: (text) => open.shown(s).scrubText(text),
      auditSeq: seq,
      done: answer.done,
    };
  }
}
