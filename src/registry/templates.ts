// `{{placeholder}}` templates: the one syntax for every strategy that renders secrets.

import { AivaultError } from '../errors.ts';

const PLACEHOLDER = /\{\{\s*([a-z][a-z0-9_]{0,63})\s*\}\}/g;

export function placeholdersOf(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

/** Whether `{{` or `}}` remains once well-formed placeholders are removed (a typo like `{{Secret}}`). */
export function hasMalformedPlaceholder(template: string): boolean {
  const rest = template.replace(PLACEHOLDER, '');
  return rest.includes('{{') || rest.includes('}}');
}

/**
 * Fills a template. Every placeholder must have a value; values are inserted as they are
 * (callers refuse CR/LF/NUL in the result where it becomes a header).
 */
export function renderTemplate(template: string, values: ReadonlyMap<string, string>): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const value = values.get(name);
    if (value === undefined) throw new AivaultError('CREDENTIAL_NOT_READY', `the template needs {{${name}}}, which no secret provides`);
    return value;
  });
}
