// The provider file format (registry/schemas/registry-provider.schema.json), as types.

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

export interface HeaderEntry {
  header_name: string;
  value_template: string;
}

export interface QueryEntry {
  param_name: string;
  value_template: string;
}

export type HmacComponent = 'timestamp' | 'method' | 'path' | 'path_and_query' | 'body';

export interface HmacConfig {
  algorithm: 'sha256' | 'sha512';
  header_name: string;
  value_template: string;
  encoding?: 'hex' | 'base64';
  signed?: HmacComponent[];
  separator?: string;
  timestamp_header?: string;
  timestamp_format?: 'unix' | 'unix_ms' | 'iso8601';
  timestamp_offset_seconds?: number;
  extra_headers?: HeaderEntry[];
}

export interface OAuth2Config {
  grant_type: 'refresh_token' | 'client_credentials';
  token_endpoint: string;
  scopes?: string[];
  client_auth?: 'basic' | 'post';
  audience?: string;
}

export type AuthConfig =
  | 'basic'
  | 'mtls'
  | { header: HeaderEntry }
  | { query: { param_name: string; value_template?: string } }
  | { path: { prefix_template: string } }
  | { basic: { username_template: string; password_template: string } }
  | { multi_header: HeaderEntry[] }
  | { multi_query: QueryEntry[] }
  | { o_auth2: OAuth2Config }
  | { aws_sig_v4: { service: string; region: string } }
  | { hmac: HmacConfig };

export type AuthKind = 'header' | 'query' | 'path' | 'basic' | 'multi_header' | 'multi_query' | 'o_auth2' | 'aws_sig_v4' | 'hmac' | 'mtls';

export interface CapabilityAllow {
  hosts: string[];
  methods: HttpMethod[];
  pathPrefixes: string[];
  /** WebSocket upgrades through the gateway (GET only), besides plain requests. */
  websocket?: boolean;
  /**
   * Headers in the signing strategy's own namespace (SigV4: `x-amz-*`, `X-Amz-Target`) an
   * agent may set, and so have signed with the owner's key: lower-case names, a trailing `*`
   * for a prefix. Any other such header from the agent is dropped.
   */
  signedHeaders?: string[];
  /**
   * Headers that ask the upstream's web stack for another method, path, host or client
   * (`x-http-method-override`, `x-original-url`, `x-forwarded-*`…) an agent may send:
   * lower-case names, a trailing `*` for a prefix. Any other such header is dropped.
   */
  overrideHeaders?: string[];
}

export interface RegistryCapability {
  id: string;
  provider: string;
  description?: string;
  allow: CapabilityAllow;
}

/** A cheap request through one of the provider's capabilities that tells whether its key works. */
export interface ProviderValidation {
  capability: string;
  method: HttpMethod;
  path: string;
  body?: string;
  contentType?: string;
  /** APIs that answer 200 to a bad key (Slack): this JSON field must be true. */
  okField?: string;
}

/**
 * Another way to reach the provider (an OAuth session beside an API key, a gateway host):
 * its own secrets and auth, optionally its own hosts and a path prefix. Among the ready
 * ones (the main credential included) the highest priority is used.
 */
export interface RegistryAlternative {
  id: string;
  description?: string;
  priority: number;
  vaultSecrets: Record<string, string>;
  auth: AuthConfig;
  /** Where this credential sends the provider's traffic: the addressed host if listed, else the first. */
  hosts?: string[];
  /** Put in front of every path sent with this credential. */
  pathPrefix?: string;
}

export interface RegistryProvider {
  $schema?: string;
  provider: string;
  description?: string;
  docs?: string;
  vaultSecrets?: Record<string, string>;
  auth: AuthConfig;
  /** The main credential's priority among `alternatives` (default 0). */
  priority?: number;
  alternatives?: RegistryAlternative[];
  hosts: string[];
  validate?: ProviderValidation;
  capabilities: RegistryCapability[];
}

/** One way to authenticate to a provider: the main one (id null) or an alternative. */
export interface ProviderCredential {
  id: string | null;
  priority: number;
  vaultSecrets: Record<string, string>;
  auth: AuthConfig;
  hosts?: string[];
  pathPrefix?: string;
}

/** The provider's credentials in preference order: priority, highest first; ties in file order, main first. */
export function credentialsOf(p: RegistryProvider): ProviderCredential[] {
  const all: ProviderCredential[] = [
    { id: null, priority: p.priority ?? 0, vaultSecrets: p.vaultSecrets ?? {}, auth: p.auth },
    ...(p.alternatives ?? []).map((a) => ({ id: a.id, priority: a.priority, vaultSecrets: a.vaultSecrets, auth: a.auth, ...(a.hosts ? { hosts: a.hosts } : {}), ...(a.pathPrefix ? { pathPrefix: a.pathPrefix } : {}) })),
  ];
  return all.map((c, i) => ({ c, i })).sort((x, y) => y.c.priority - x.c.priority || x.i - y.i).map(({ c }) => c);
}

/** Every canonical secret name the provider claims, alternatives' included. */
export function secretNamesOf(p: RegistryProvider): string[] {
  return [...Object.keys(p.vaultSecrets ?? {}), ...(p.alternatives ?? []).flatMap((a) => Object.keys(a.vaultSecrets))];
}

export function authKind(auth: AuthConfig): AuthKind {
  if (typeof auth === 'string') return auth;
  return Object.keys(auth)[0] as AuthKind;
}
