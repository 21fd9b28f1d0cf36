// One interface for every auth strategy: given the request about to go upstream and the
// credential's secret values (by placeholder), set what the strategy sets and report
// every string that now carries a secret, so the response can be scrubbed of it.

export interface OutboundRequest {
  method: string;
  url: URL;
  /** Lower-case header name -> value. */
  headers: Map<string, string>;
  body: Buffer | undefined;
}

export interface AuthStrategy {
  readonly kind: string;
  /** Header names (lower case) this strategy sets; agent-supplied ones are dropped first. */
  readonly ownedHeaders: readonly string[];
  /** Query parameter names this strategy sets; agent-supplied ones are dropped first. */
  readonly ownedQueryParams: readonly string[];
  /** Applies the credential; returns the injected values that embed a secret (for scrubbing). */
  apply(request: OutboundRequest, secrets: ReadonlyMap<string, string>): Promise<string[]> | string[];
  /**
   * For strategies that sign the request: the agent headers whose signature would authorise
   * more than the capability says (dropped unless the capability allows them by name), and
   * the query parameters that belong to the signature itself (refused).
   */
  readonly signs?: { header(name: string): boolean; queryParam(name: string): boolean };
  /** For strategies that authenticate the connection (mtls): the TLS client material. */
  tls?(secrets: ReadonlyMap<string, string>): { cert: string; key: string; ca?: string; passphrase?: string };
}
