// Scopes and execution contexts. A secret lives in one scope: `global`, a workspace
// (`workspace:W`) or a group of a workspace (`group:W/G`). A caller runs in one context,
// written the same way. Which secrets serve which callers:
//   - a group secret serves only callers in that group;
//   - a workspace secret serves callers in the workspace and in any group of it;
//   - a global secret serves callers outside any group, and a group's callers only when
//     the owner attached it to that group (`secrets attach-group`).
// Lookups try the most specific scope first: group, then workspace, then global.

import { AivaultError } from '../errors.ts';

export const GLOBAL_SCOPE = 'global';
const ID = '[a-z0-9][a-z0-9_-]{0,63}';
const SCOPE = new RegExp(`^(?:global|workspace:${ID}|group:${ID}/${ID})$`);
const ID_ONLY = new RegExp(`^${ID}$`);
export const SCOPE_RULE = '"global", "workspace:W" or "group:W/G", where W and G are 1-64 lower-case letters, digits, "-" or "_"';

export type ParsedScope = { kind: 'global' } | { kind: 'workspace'; workspace: string } | { kind: 'group'; workspace: string; group: string };

export function isScope(scope: string): boolean {
  return SCOPE.test(scope);
}

export function assertScope(scope: string): void {
  if (!isScope(scope)) throw new AivaultError('INVALID_SCOPE', `invalid scope: use ${SCOPE_RULE}`);
}

export function parseScope(scope: string): ParsedScope {
  assertScope(scope);
  if (scope === GLOBAL_SCOPE) return { kind: 'global' };
  const [kind, rest] = scope.split(':', 2) as [string, string];
  if (kind === 'workspace') return { kind: 'workspace', workspace: rest };
  const [workspace, group] = rest.split('/', 2) as [string, string];
  return { kind: 'group', workspace, group };
}

/** `W/G`, the form a group takes in a global secret's attachments. */
export function groupKey(workspace: string, group: string): string {
  return `${workspace}/${group}`;
}

export interface ScopeOptions {
  scope?: string;
  workspaceId?: string;
  groupId?: string;
}

/**
 * The scope these name: `scope` as `group:W/G`, or the aivault docs' spelling, `scope`
 * `group` with `workspaceId` W and `groupId` G (the ids alone imply the kind).
 * Undefined when nothing was given.
 */
export function scopeFromOptions(o: ScopeOptions): string | undefined {
  const { workspaceId: w, groupId: g } = o;
  for (const [field, id] of [['workspaceId', w], ['groupId', g]] as const) {
    if (id !== undefined && !ID_ONLY.test(id)) throw new AivaultError('INVALID_SCOPE', `${field} must be 1-64 lower-case letters, digits, "-" or "_"`, { field });
  }
  if (g !== undefined && w === undefined) throw new AivaultError('INVALID_SCOPE', 'a group belongs to a workspace: give workspaceId with groupId', { field: 'workspaceId' });
  const kind = o.scope ?? (g !== undefined ? 'group' : w !== undefined ? 'workspace' : undefined);
  if (kind === undefined) return undefined;
  if (kind === 'workspace' || kind === 'group') {
    if (w === undefined) throw new AivaultError('INVALID_SCOPE', `a ${kind} scope needs workspaceId`, { field: 'workspaceId' });
    if (kind === 'workspace') {
      if (g !== undefined) throw new AivaultError('INVALID_SCOPE', 'a workspace scope takes no groupId', { field: 'groupId' });
      return `workspace:${w}`;
    }
    if (g === undefined) throw new AivaultError('INVALID_SCOPE', 'a group scope needs groupId', { field: 'groupId' });
    return `group:${groupKey(w, g)}`;
  }
  if (w !== undefined || g !== undefined) throw new AivaultError('INVALID_SCOPE', `workspaceId and groupId go with the workspace and group scopes, not ${kind}`, { field: 'scope' });
  assertScope(kind);
  return kind;
}

/** The scopes a context looks in, most specific first. */
export function lookupChain(context: string): string[] {
  const c = parseScope(context);
  if (c.kind === 'global') return [GLOBAL_SCOPE];
  if (c.kind === 'workspace') return [context, GLOBAL_SCOPE];
  return [context, `workspace:${c.workspace}`, GLOBAL_SCOPE];
}

/** Whether a secret in `scope`, attached to `groups`, serves a caller in `context`. */
export function serves(secret: { scope: string; groups: readonly string[] }, context: string): boolean {
  const s = parseScope(secret.scope);
  const c = parseScope(context);
  if (s.kind === 'group') return c.kind === 'group' && c.workspace === s.workspace && c.group === s.group;
  if (s.kind === 'workspace') return c.kind !== 'global' && c.workspace === s.workspace;
  return c.kind !== 'group' || secret.groups.includes(groupKey(c.workspace, c.group));
}
