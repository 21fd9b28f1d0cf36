// Access tokens for o_auth2 credentials, obtained with oauth4webapi. One token per
// credential, cached in memory and sealed at rest (a restart does not force a refresh),
// refreshed shortly before it expires. Concurrent callers share one refresh (single
// flight): in this process through one promise, across processes (daemon replicas on one
// database) through a lease in storage, whose holder refreshes while the others wait for
// its token to land in the shared sealed cache. A rotated refresh token is stored in the vault before the new access token is
// used. Token requests go through the same checked connector as every other upstream
// call, and a failed refresh reports the endpoint's `error` code, never its body.

import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as OAuth from 'oauth4webapi';
import type { Agent } from 'undici';
import { lazy } from '../lazy.ts';
import type { TokenSource } from '../auth/oauth2.ts';
import { AivaultError } from '../errors.ts';
import type { OAuth2Config } from '../registry/types.ts';
import { openBlob, sealBlob } from '../vault/envelope.ts';
import type { Vault } from '../vault/vault.ts';
import type { ResolvedCredential } from './catalog.ts';
import { upstreamError } from './upstream.ts';
import { GLOBAL_SCOPE } from '../vault/scopes.ts';

const oauthLib = lazy<typeof import('oauth4webapi')>('oauth4webapi');
const undici = lazy<typeof import('undici')>('undici');

/** Refresh this long before expiry, or a tenth of the lifetime for short-lived tokens. */
const EARLY_REFRESH_MS = 60_000;
/** Tokens that say nothing of their lifetime are kept this long. */
const DEFAULT_LIFETIME_MS = 3600_000;
/** A refresh lease outlives the 30 s token request, so a crashed holder frees it soon after. */
const LEASE_TTL_MS = 45_000;
/** Tokens held per credential that stay scrubbed (a refresh loop an agent provokes cannot grow it further). */
const MAX_HELD = 64;
const LEASE_WAIT_MS = 50_000;
const LEASE_POLL_MS = 50;
/**
 * The error codes a token endpoint may name (RFC 6749 §5.2, RFC 8628, RFC 8707, RFC 9449):
 * only these are repeated in our errors. Any other text is the endpoint's, and an endpoint
 * that reflects its request would put the refresh token or client secret there.
 */
const OAUTH_ERROR_CODES = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'access_denied', 'server_error', 'temporarily_unavailable', 'authorization_pending', 'slow_down', 'expired_token', 'invalid_target', 'invalid_dpop_proof', 'use_dpop_nonce']);

interface CachedToken {
  token: string;
  expiresAt: number;
  refreshAt: number;
}

/**
 * A credential's token cache key; per scope: a workspace's session and the global one are
 * different credentials. It names the definition too (strategy, hosts, bindings, endpoint
 * overrides): a token obtained for one definition is never sent where an updated one goes.
 */
function tokenKey(credential: ResolvedCredential): string {
  const definition = JSON.stringify([credential.auth, credential.hosts, [...credential.bindings], [...credential.hostMap], [...credential.tenants]]);
  const digest = createHash('sha256').update(definition).digest('hex').slice(0, 16);
  return `${credential.source}:${credential.name}${credential.scope === GLOBAL_SCOPE ? '' : `@${credential.scope}`}#${digest}`;
}

export interface OAuthTokensOptions {
  /** The connection pool for token requests, with the credential's address policy. */
  dispatcher: (allowPrivateNetwork: boolean) => Agent;
  now?: () => number;
}

export class OAuthTokens {
  readonly #vault: Vault;
  readonly #options: OAuthTokensOptions;
  readonly #memory = new Map<string, CachedToken>();
  /**
   * Every access token this process has held, per credential, until it expires: one that was
   * sent stays in agents' scrubbers though replaced or refused (a 401 does not prove a token
   * dead at the provider, and a token refreshed early is still live).
   */
  readonly #issued = new Map<string, Map<string, number>>();
  readonly #inflight = new Map<string, Promise<string>>();
  /** This process's name on refresh leases. */
  readonly #holder = randomUUID();
  /** Token requests made, for tests and metrics. */
  requests = 0;
  /** Runs before each token request goes out (the broker widens open answers: it carries secrets). */
  #beforeRequest: (() => Promise<void>) | undefined;

  constructor(vault: Vault, options: OAuthTokensOptions) {
    this.#vault = vault;
    this.#options = options;
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }

  /** A TokenSource bound to one credential. */
  source(credential: ResolvedCredential, config: OAuth2Config): TokenSource {
    const key = tokenKey(credential);
    return {
      token: (secrets) => this.#token(key, credential, config, secrets),
      invalidate: async (rejected) => {
        if (this.#memory.get(key)?.token === rejected) this.#memory.delete(key);
        const stored = await this.#load(key);
        if (stored?.token === rejected) await this.#vault.storage.deleteOAuthToken(key);
      },
    };
  }

  #hold(key: string, entry: CachedToken): void {
    this.#memory.set(key, entry);
    let issued = this.#issued.get(key);
    if (!issued) this.#issued.set(key, (issued = new Map()));
    issued.delete(entry.token);
    issued.set(entry.token, entry.expiresAt);
    if (issued.size > MAX_HELD) issued.delete(issued.keys().next().value!);
  }

  /** Every unexpired access token this process has held for `credential`, newest last; never asks for one. */
  held(credential: ResolvedCredential): string[] {
    const issued = this.#issued.get(tokenKey(credential));
    if (!issued) return [];
    const now = this.#now();
    for (const [token, expiresAt] of issued) if (expiresAt <= now) issued.delete(token);
    return [...issued.keys()];
  }

  /** Has `run` before every token request leaves: a token endpoint is an upstream too. */
  beforeEachRequest(run: () => Promise<void>): void {
    this.#beforeRequest = run;
  }

  /** The access token sealed in storage for `credential` (another process's, or from before a restart), if any; never asks for one. */
  async stored(credential: ResolvedCredential): Promise<string | undefined> {
    return (await this.#load(tokenKey(credential)))?.token;
  }

  async #load(key: string): Promise<CachedToken | undefined> {
    const row = await this.#vault.storage.getOAuthToken(key);
    if (!row) return undefined;
    try {
      const token = openBlob(this.#vault.cacheKey, `oauth:${key}`, row.sealed).toString('utf8');
      return { token, expiresAt: row.expiresAt, refreshAt: refreshTime(this.#now(), row.expiresAt) };
    } catch {
      return undefined; // unreadable cache: just refresh
    }
  }

  async #token(key: string, credential: ResolvedCredential, config: OAuth2Config, secrets: ReadonlyMap<string, string>): Promise<string> {
    const now = this.#now();
    const cached = this.#memory.get(key);
    if (cached && now < cached.refreshAt) return cached.token;
    const running = this.#inflight.get(key);
    if (running) return running;
    const work = (async () => {
      const stored = cached ? undefined : await this.#load(key);
      if (stored && this.#now() < stored.refreshAt) {
        this.#hold(key, stored);
        return stored.token;
      }
      return this.#refreshOnce(key, credential, config, secrets);
    })();
    this.#inflight.set(key, work);
    try {
      return await work;
    } finally {
      this.#inflight.delete(key);
    }
  }

  /** Refreshes under the cluster-wide lease, or takes the token another holder obtained. */
  async #refreshOnce(key: string, credential: ResolvedCredential, config: OAuth2Config, secrets: ReadonlyMap<string, string>): Promise<string> {
    const storage = this.#vault.storage;
    const lease = `oauth:${key}`;
    const deadline = Date.now() + LEASE_WAIT_MS;
    const fresh = async (): Promise<string | undefined> => {
      const stored = await this.#load(key);
      if (!stored || this.#now() >= stored.refreshAt) return undefined;
      this.#hold(key, stored);
      return stored.token;
    };
    while (!(await storage.acquireLease(lease, this.#holder, LEASE_TTL_MS, Date.now()))) {
      const theirs = await fresh();
      if (theirs) return theirs;
      if (Date.now() > deadline) throw new AivaultError('OAUTH_REFRESH_FAILED', 'another aivault process held the token refresh too long');
      await sleep(LEASE_POLL_MS);
    }
    try {
      // A refresh may have finished between the first look and winning the lease.
      const theirs = await fresh();
      if (theirs) return theirs;
      // Another process may have rotated the refresh token: use the vault's current one.
      const refreshId = credential.bindings.get('refresh_token');
      if (refreshId) {
        const current = await this.#vault.revealSecret(refreshId, { credential: true });
        secrets = new Map([...secrets, ['refresh_token', current.toString('utf8')]]);
        current.fill(0);
      }
      return await this.#refresh(key, credential, config, secrets);
    } finally {
      await storage.releaseLease(lease, this.#holder).catch(() => {});
    }
  }

  async #refresh(key: string, credential: ResolvedCredential, config: OAuth2Config, secrets: ReadonlyMap<string, string>): Promise<string> {
    const endpoint = new URL(config.token_endpoint);
    if (endpoint.protocol !== 'https:' && !(endpoint.protocol === 'http:' && credential.allowHttp)) {
      throw new AivaultError('INSECURE_SCHEME', 'the token endpoint is plain http and the owner did not allow http for this credential');
    }
    const oauth = oauthLib();
    const as: OAuth.AuthorizationServer = { issuer: endpoint.origin, token_endpoint: endpoint.href };
    const clientId = secrets.get('client_id');
    if (!clientId) throw new AivaultError('CREDENTIAL_NOT_READY', 'the credential has no client_id');
    const client: OAuth.Client = { client_id: clientId };
    const clientSecret = secrets.get('client_secret');
    const clientAuth = clientSecret === undefined ? oauth.None() : config.client_auth === 'post' ? oauth.ClientSecretPost(clientSecret) : oauth.ClientSecretBasic(clientSecret);
    const dispatcher = this.#options.dispatcher(credential.allowPrivateNetwork);
    const options = {
      [oauth.customFetch]: (url: string, init: RequestInit) => undici().fetch(url, { ...(init as object), dispatcher } as Parameters<ReturnType<typeof undici>['fetch']>[1]) as unknown as Promise<Response>,
      [oauth.allowInsecureRequests]: endpoint.protocol === 'http:',
      signal: AbortSignal.timeout(30_000),
    };
    const parameters = new URLSearchParams();
    if (config.scopes?.length) parameters.set('scope', config.scopes.join(' '));
    if (config.audience) parameters.set('audience', config.audience);

    // The request carries the client's secret and the refresh token as they are now.
    await this.#beforeRequest?.();
    this.requests += 1;
    let result: OAuth.TokenEndpointResponse;
    try {
      if (config.grant_type === 'refresh_token') {
        const refreshToken = secrets.get('refresh_token');
        if (!refreshToken) throw new AivaultError('CREDENTIAL_NOT_READY', 'the credential has no refresh_token');
        const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshToken, { ...options, additionalParameters: parameters });
        result = await oauth.processRefreshTokenResponse(as, client, response);
      } else {
        const response = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, parameters, options);
        result = await oauth.processClientCredentialsResponse(as, client, response);
      }
    } catch (err) {
      throw refreshError(err);
    }
    if (result.token_type !== 'bearer') throw new AivaultError('OAUTH_REFRESH_FAILED', 'the token endpoint issued a token that is not a bearer token; only bearer tokens are supported');

    // A rotated refresh token replaces the old one at once, before the new access token is
    // used: the old one may already be dead at the provider.
    const rotated = result.refresh_token;
    const refreshId = credential.bindings.get('refresh_token');
    if (config.grant_type === 'refresh_token' && rotated && rotated !== secrets.get('refresh_token') && refreshId) {
      await this.#vault.rotateSecret(refreshId, Buffer.from(rotated, 'utf8'));
    }

    const now = this.#now();
    const lifetime = typeof result.expires_in === 'number' && result.expires_in > 0 ? result.expires_in * 1000 : DEFAULT_LIFETIME_MS;
    const entry: CachedToken = { token: result.access_token, expiresAt: now + lifetime, refreshAt: refreshTime(now, now + lifetime) };
    this.#hold(key, entry);
    await this.#vault.storage.putOAuthToken(key, { sealed: sealBlob(this.#vault.cacheKey, `oauth:${key}`, Buffer.from(entry.token, 'utf8')), expiresAt: entry.expiresAt });
    return entry.token;
  }
}

/**
 * What a token request carries of the client's secret beyond the secret itself: the Basic
 * credentials exactly as oauth4webapi builds them (it form-encodes id and secret first, so
 * their base64 is not the raw secret's), for scrubbers to look for. Posted secrets are
 * form-encoded, which the scrubber's percent view reads.
 */
export async function clientAuthValues(config: OAuth2Config, secrets: ReadonlyMap<string, string>): Promise<string[]> {
  const clientId = secrets.get('client_id');
  const clientSecret = secrets.get('client_secret');
  if (!clientId || clientSecret === undefined || config.client_auth === 'post') return [];
  const headers = new Headers();
  await oauthLib().ClientSecretBasic(clientSecret)({ issuer: 'https://aivault.invalid' }, { client_id: clientId }, new URLSearchParams(), headers);
  const basic = headers.get('authorization') ?? '';
  return basic ? [basic, basic.replace(/^Basic /, '')] : [];
}

function refreshTime(now: number, expiresAt: number): number {
  const lifetime = Math.max(0, expiresAt - now);
  return expiresAt - Math.min(EARLY_REFRESH_MS, lifetime / 10);
}

function refreshError(err: unknown): AivaultError {
  if (err instanceof AivaultError) return err;
  const oauth = oauthLib();
  if (err instanceof oauth.ResponseBodyError) {
    const code = OAUTH_ERROR_CODES.has(err.error) ? err.error : 'unrecognised error code';
    return new AivaultError('OAUTH_REFRESH_FAILED', `the token endpoint refused the token request (error: ${code})`);
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) return new AivaultError('OAUTH_REFRESH_FAILED', 'the token endpoint refused the client (error: invalid_client)');
  if (err instanceof oauth.OperationProcessingError) return new AivaultError('OAUTH_REFRESH_FAILED', 'the token endpoint answered with something that is not a valid token response (error: invalid_response)');
  return upstreamError(err);
}
