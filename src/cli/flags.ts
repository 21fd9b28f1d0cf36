// Which CLI flag sets each API field. The core names fields in its messages (`tokenEndpoint
// must be an absolute URL`) and never flags, since SDK, daemon and MCP callers read them too;
// the CLI shows its user the flag instead (`--token-endpoint must be …`).

import type { AivaultError } from '../errors.ts';

/** API field → the flag that sets it. */
export const FIELD_FLAGS: Readonly<Record<string, string>> = {
  aliases: '--alias',
  allowHttp: '--allow-http',
  allowPrivateNetwork: '--allow-private-network',
  allowShort: '--allow-short',
  anyTenant: '--any-tenant',
  approve: '--approve',
  clearAliases: '--clear-aliases',
  credential: '--credential',
  expires: '--expires',
  groupId: '--group-id',
  host: '--host',
  hosts: '--host',
  kind: '--kind',
  listen: '--listen',
  maxRequestBodyBytes: '--max-request-body-bytes',
  maxResponseBodyBytes: '--max-response-body-bytes',
  method: '--method',
  methods: '--method',
  mode: '--mode',
  name: '--name',
  namespace: '--namespace',
  overwrite: '--overwrite',
  path: '--path',
  pathPrefixes: '--path',
  rate: '--rate',
  rateLimitPerMinute: '--rate-limit-per-minute',
  responseBlock: '--response-block',
  scope: '--scope',
  secretRefs: '--secret-ref',
  storeAlias: '--store-alias',
  storeField: '--store-field',
  target: '--target',
  tokenEndpoint: '--token-endpoint',
  visibility: '--visibility',
  workspaceId: '--workspace-id',
};

/**
 * The message with field names written as their flags: the error's own field wherever it
 * stands as a word, and any other field whose name is camelCase. A one-word field (`scope`,
 * `path`) is also an ordinary word, so it is rewritten only where the error names it.
 */
export function messageWithFlags(err: Pick<AivaultError, 'message' | 'field'>): string {
  let message = err.message;
  for (const [field, flag] of Object.entries(FIELD_FLAGS)) {
    if (field !== err.field && !/[A-Z]/.test(field)) continue;
    message = message.replace(new RegExp(`(?<![\\w:/.-])${field}(?![\\w:/-])`, 'g'), flag);
  }
  return message;
}
