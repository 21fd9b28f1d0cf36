// What each auth strategy reads: the templates it renders (with their JSON pointers),
// the placeholders it fills itself, and the named inputs it requires or accepts.
// The registry validator and `credential create` both check bindings against this.

import { placeholdersOf } from './templates.ts';
import type { AuthConfig } from './types.ts';

export interface AuthTemplate {
  pointer: string;
  template: string;
}

export interface AuthInputs {
  templates: AuthTemplate[];
  /** Placeholders the strategy fills itself (e.g. hmac's {{signature}}). */
  own: string[];
  /** Named inputs the strategy reads directly (not via a template). */
  required: string[];
  optional: string[];
}

export function authInputs(auth: AuthConfig): AuthInputs {
  if (auth === 'basic') return { templates: [], own: [], required: ['username', 'password'], optional: [] };
  if (auth === 'mtls') return { templates: [], own: [], required: ['cert', 'key'], optional: ['ca', 'passphrase'] };
  if ('header' in auth) return { templates: [{ pointer: '/auth/header/value_template', template: auth.header.value_template }], own: [], required: [], optional: [] };
  if ('query' in auth) {
    return { templates: [{ pointer: '/auth/query/value_template', template: auth.query.value_template ?? '{{secret}}' }], own: [], required: [], optional: [] };
  }
  if ('path' in auth) return { templates: [{ pointer: '/auth/path/prefix_template', template: auth.path.prefix_template }], own: [], required: [], optional: [] };
  if ('basic' in auth) {
    return {
      templates: [
        { pointer: '/auth/basic/username_template', template: auth.basic.username_template },
        { pointer: '/auth/basic/password_template', template: auth.basic.password_template },
      ],
      own: [],
      required: [],
      optional: [],
    };
  }
  if ('multi_header' in auth) {
    return { templates: auth.multi_header.map((h, i) => ({ pointer: `/auth/multi_header/${i}/value_template`, template: h.value_template })), own: [], required: [], optional: [] };
  }
  if ('multi_query' in auth) {
    return { templates: auth.multi_query.map((q, i) => ({ pointer: `/auth/multi_query/${i}/value_template`, template: q.value_template })), own: [], required: [], optional: [] };
  }
  if ('o_auth2' in auth) {
    return auth.o_auth2.grant_type === 'refresh_token'
      ? { templates: [], own: [], required: ['client_id', 'refresh_token'], optional: ['client_secret'] }
      : { templates: [], own: [], required: ['client_id', 'client_secret'], optional: [] };
  }
  if ('aws_sig_v4' in auth) return { templates: [], own: [], required: ['access_key_id', 'secret_access_key'], optional: ['session_token'] };
  // hmac
  const h = auth.hmac;
  return {
    templates: [
      { pointer: '/auth/hmac/value_template', template: h.value_template },
      ...(h.extra_headers ?? []).map((e, i) => ({ pointer: `/auth/hmac/extra_headers/${i}/value_template`, template: e.value_template })),
    ],
    own: ['signature', 'timestamp'],
    required: ['secret'],
    optional: [],
  };
}

/** Every placeholder a binding must provide (template slots not filled by the strategy, plus required inputs). */
export function neededPlaceholders(auth: AuthConfig): { required: string[]; optional: string[] } {
  const inputs = authInputs(auth);
  const fromTemplates = inputs.templates.flatMap((t) => placeholdersOf(t.template)).filter((p) => !inputs.own.includes(p));
  return { required: [...new Set([...fromTemplates, ...inputs.required])], optional: inputs.optional };
}
