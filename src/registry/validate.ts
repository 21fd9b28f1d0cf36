// Validates provider files: the JSON Schema (ajv, draft 2020-12) first, then the rules a
// schema cannot say (cross-field and cross-file). Every problem names its file and the
// JSON pointer of the offending value.

import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { lazy } from '../lazy.ts';
import { patternCovers } from '../policy/hosts.ts';
import { pathMatchesPrefix } from '../policy/paths.ts';
import { authInputs } from './auth-inputs.ts';
import { hasMalformedPlaceholder, placeholdersOf } from './templates.ts';
import { secretNamesOf, type AuthConfig, type RegistryProvider } from './types.ts';

export interface RegistryIssue {
  file: string;
  pointer: string;
  message: string;
}

export const SCHEMA_URL = new URL('../../registry/schemas/registry-provider.schema.json', import.meta.url);
const AUTH_KINDS = ['header', 'query', 'path', 'basic', 'multi_header', 'multi_query', 'o_auth2', 'aws_sig_v4', 'hmac'] as const;

interface Validators {
  provider: ValidateFunction;
  auth: Map<string, ValidateFunction>;
}

const ajvLib = lazy<typeof import('ajv/dist/2020.js')>('ajv/dist/2020.js');
let validators: Validators | undefined;

function compile(): Validators {
  if (validators) return validators;
  const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $id: string };
  const ajv = new (ajvLib().Ajv2020)({ allErrors: true, strict: true });
  ajv.addSchema(schema);
  const provider = ajv.getSchema(schema.$id)!;
  const auth = new Map(AUTH_KINDS.map((k) => [k, ajv.getSchema(`${schema.$id}#/$defs/auth_${k}`)!]));
  validators = { provider, auth };
  return validators;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function describe(err: ErrorObject): { pointer: string; message: string } {
  const p = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperty':
    case 'additionalProperties':
      return { pointer: `${err.instancePath}/${escapePointer(String(p.additionalProperty))}`, message: `unknown key "${String(p.additionalProperty)}"` };
    case 'required':
      return { pointer: err.instancePath || '/', message: `missing required key "${String(p.missingProperty)}"` };
    case 'pattern':
      return { pointer: err.instancePath, message: `does not match ${String(p.pattern)}` };
    case 'enum':
      return { pointer: err.instancePath, message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'propertyNames':
      return { pointer: `${err.instancePath}/${escapePointer(String(p.propertyName))}`, message: 'is not a canonical secret name (A-Z, 0-9, _; starting with a letter)' };
    default:
      return { pointer: err.instancePath || '/', message: err.message ?? err.keyword };
  }
}

function authSchemaIssues(auth: unknown, file: string, at = '/auth'): RegistryIssue[] {
  const v = compile();
  const issues: RegistryIssue[] = [];
  if (typeof auth === 'string' && (auth === 'basic' || auth === 'mtls')) return issues;
  const kind = auth !== null && typeof auth === 'object' && !Array.isArray(auth) ? Object.keys(auth) : [];
  const one = kind.length === 1 ? v.auth.get(kind[0]!) : undefined;
  if (!one) {
    issues.push({ file, pointer: at, message: `must be "basic", "mtls", or an object with exactly one of ${AUTH_KINDS.join(', ')}` });
  } else if (!one(auth)) {
    for (const e of one.errors ?? []) {
      const d = describe(e);
      issues.push({ file, pointer: `${at}${d.pointer === '/' ? '' : d.pointer}`, message: d.message });
    }
  }
  return issues;
}

/** Checks one `auth` value on its own (for credentials built from CLI flags). */
export function validateAuthConfig(auth: unknown): RegistryIssue[] {
  const issues = authSchemaIssues(auth, 'auth');
  if (issues.length > 0) return issues;
  return authRuleIssues(auth as AuthConfig, 'auth');
}

/** Rules on a schema-valid `auth` that the schema cannot express. */
function authRuleIssues(a: AuthConfig, file: string, base = ''): RegistryIssue[] {
  const out: RegistryIssue[] = [];
  const add = (pointer: string, message: string) => out.push({ file, pointer: base + pointer, message });
  for (const t of authInputs(a).templates) if (hasMalformedPlaceholder(t.template)) add(t.pointer, 'has a malformed {{placeholder}}');
  if (typeof a === 'object' && 'hmac' in a) {
    if (!placeholdersOf(a.hmac.value_template).includes('signature')) add('/auth/hmac/value_template', 'must contain {{signature}}');
    if (a.hmac.signed?.includes('timestamp') && !a.hmac.timestamp_header) add('/auth/hmac/timestamp_header', 'is required when the timestamp is signed');
  }
  if (typeof a === 'object' && 'path' in a && placeholdersOf(a.path.prefix_template).length === 0) {
    add('/auth/path/prefix_template', 'must contain a {{placeholder}}');
  }
  return out;
}

function schemaIssues(doc: unknown, file: string): RegistryIssue[] {
  const v = compile();
  if (v.provider(doc)) return [];
  const issues: RegistryIssue[] = [];
  const isAuthPath = (path: string) => /^(?:\/alternatives\/\d+)?\/auth(?:\/|$)/.test(path);
  const errors = (v.provider.errors ?? []).filter((e) => !isAuthPath(e.instancePath));
  // Report auth problems against the one variant the file chose, not every branch of the oneOf.
  const auth = (doc as { auth?: unknown }).auth;
  if (auth !== undefined) issues.push(...authSchemaIssues(auth, file));
  const alternatives = (doc as { alternatives?: unknown }).alternatives;
  if (Array.isArray(alternatives)) {
    alternatives.forEach((a: unknown, i) => {
      const altAuth = (a as { auth?: unknown } | null)?.auth;
      if (altAuth !== undefined) issues.push(...authSchemaIssues(altAuth, file, `/alternatives/${i}/auth`));
    });
  }
  for (const e of errors) {
    if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
    issues.push({ file, ...describe(e) });
  }
  return dedupe(issues);
}

function dedupe(issues: RegistryIssue[]): RegistryIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.file}\u0000${i.pointer}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Rules across fields of one (schema-valid) provider. */
function crossFieldIssues(p: RegistryProvider, file: string): RegistryIssue[] {
  const issues: RegistryIssue[] = [];
  const add = (pointer: string, message: string) => issues.push({ file, pointer, message });

  const ids = new Set<string>();
  p.capabilities.forEach((cap, i) => {
    const at = `/capabilities/${i}`;
    if (cap.provider !== p.provider) add(`${at}/provider`, `is "${cap.provider}" but the file's provider is "${p.provider}"`);
    const [prefix] = cap.id.split('/');
    if (prefix !== p.provider) add(`${at}/id`, `must be of the form ${p.provider}/<name>`);
    if (ids.has(cap.id)) add(`${at}/id`, `duplicate capability id "${cap.id}"`);
    ids.add(cap.id);
    cap.allow.hosts.forEach((h, j) => {
      if (!p.hosts.some((outer) => patternCovers(outer, h))) add(`${at}/allow/hosts/${j}`, `"${h}" is not among the provider's hosts`);
    });
    cap.allow.pathPrefixes.forEach((prefixPath, j) => {
      if (prefixPath.split('/').some((seg) => seg === '.' || seg === '..')) add(`${at}/allow/pathPrefixes/${j}`, 'contains a dot segment');
    });
  });

  if (p.validate) {
    const cap = p.capabilities.find((c) => c.id === p.validate!.capability);
    if (!cap) add('/validate/capability', `"${p.validate.capability}" is not one of this provider's capabilities`);
    else {
      if (!cap.allow.methods.includes(p.validate.method)) add('/validate/method', `${p.validate.method} is not allowed by ${cap.id}`);
      if (!cap.allow.pathPrefixes.some((prefix) => pathMatchesPrefix(prefix, p.validate!.path))) add('/validate/path', `is not under ${cap.id}'s path prefixes`);
    }
    if (p.validate.path.split('/').some((seg) => seg === '.' || seg === '..' || seg === '*')) add('/validate/path', 'must be a concrete path (no dot segments or wildcards)');
  }

  issues.push(...credentialIssues(p.auth, p.vaultSecrets, file, ''));
  const claimed = new Map<string, string>(Object.keys(p.vaultSecrets ?? {}).map((n) => [n, 'the main credential']));
  const altIds = new Set<string>();
  (p.alternatives ?? []).forEach((a, i) => {
    const at = `/alternatives/${i}`;
    if (altIds.has(a.id)) add(`${at}/id`, `duplicate alternative id "${a.id}"`);
    altIds.add(a.id);
    for (const name of Object.keys(a.vaultSecrets)) {
      const owner = claimed.get(name);
      if (owner) add(`${at}/vaultSecrets/${name}`, `${name} is already a secret of ${owner}: each credential has its own secrets`);
      claimed.set(name, `alternative "${a.id}"`);
    }
    a.hosts?.forEach((h, j) => {
      if (h.startsWith('*.')) add(`${at}/hosts/${j}`, 'must be a concrete host (traffic is sent there)');
    });
    if (a.pathPrefix?.split('/').some((seg) => seg === '.' || seg === '..' || seg === '*')) add(`${at}/pathPrefix`, 'must be a concrete path (no dot segments or wildcards)');
    issues.push(...credentialIssues(a.auth, a.vaultSecrets, file, at));
  });
  return issues;
}

/** One credential's auth against the secrets that fill it (the main one, or an alternative at `base`). */
function credentialIssues(auth: AuthConfig, vaultSecrets: Record<string, string> | undefined, file: string, base: string): RegistryIssue[] {
  const issues: RegistryIssue[] = [];
  const add = (pointer: string, message: string) => issues.push({ file, pointer: base + pointer, message });
  const inputs = authInputs(auth);
  const provided = new Set(Object.values(vaultSecrets ?? {}));
  const used = new Set<string>([...inputs.required, ...inputs.optional]);
  issues.push(...authRuleIssues(auth, file, base));
  if (typeof auth === 'object' && 'o_auth2' in auth && !auth.o_auth2.token_endpoint.startsWith('https://')) {
    add('/auth/o_auth2/token_endpoint', 'must be an https URL');
  }
  for (const t of inputs.templates) {
    for (const name of placeholdersOf(t.template)) {
      used.add(name);
      if (!inputs.own.includes(name) && vaultSecrets && !provided.has(name)) add(t.pointer, `uses {{${name}}}, which no vaultSecrets entry provides`);
    }
  }
  if (vaultSecrets) {
    for (const [name, placeholder] of Object.entries(vaultSecrets)) {
      if (!used.has(placeholder)) add(`/vaultSecrets/${name}`, `maps to {{${placeholder}}}, which the auth strategy never uses`);
    }
    for (const input of inputs.required) {
      if (!provided.has(input)) add('/vaultSecrets', `the auth strategy needs "${input}", which no vaultSecrets entry provides`);
    }
  }
  return issues;
}

/** All problems with one provider document (parsed JSON). */
export function validateProvider(doc: unknown, file: string): RegistryIssue[] {
  const issues = schemaIssues(doc, file);
  if (issues.length > 0) return issues;
  return crossFieldIssues(doc as RegistryProvider, file);
}

/** Parses and validates one file's text. */
export function validateProviderText(text: string, file: string): { provider?: RegistryProvider; issues: RegistryIssue[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around the error; it is not repeated here in case it holds a secret.
    return { issues: [{ file, pointer: '', message: 'not valid JSON' }] };
  }
  const issues = validateProvider(doc, file);
  return issues.length > 0 ? { issues } : { provider: doc as RegistryProvider, issues };
}

/** Rules across a whole set of providers: unique provider ids, capability ids and secret names. */
export function validateProviderSet(entries: readonly { file: string; provider: RegistryProvider }[]): RegistryIssue[] {
  const issues: RegistryIssue[] = [];
  const providers = new Map<string, string>();
  const capabilities = new Map<string, string>();
  const secrets = new Map<string, string>();
  for (const { file, provider } of entries) {
    const other = providers.get(provider.provider);
    if (other) issues.push({ file, pointer: '/provider', message: `provider "${provider.provider}" is also defined in ${other}` });
    providers.set(provider.provider, file);
    provider.capabilities.forEach((c, i) => {
      const prev = capabilities.get(c.id);
      if (prev && prev !== file) issues.push({ file, pointer: `/capabilities/${i}/id`, message: `capability "${c.id}" is also defined in ${prev}` });
      capabilities.set(c.id, file);
    });
    for (const name of secretNamesOf(provider)) {
      const prev = secrets.get(name);
      if (prev && prev !== file) issues.push({ file, pointer: `/vaultSecrets/${name}`, message: `secret name ${name} is also claimed by ${prev}` });
      secrets.set(name, file);
    }
  }
  return issues;
}

export function formatIssue(issue: RegistryIssue): string {
  return `${issue.file}#${issue.pointer}: ${issue.message}`;
}
