// Rendering injected values safely: a value bound for a header may not carry CR, LF or
// NUL (a secret included), or it could smuggle extra headers upstream.

import { AivaultError } from '../errors.ts';
import { renderTemplate } from '../registry/templates.ts';

const FORBIDDEN = /[\r\n\u0000]/;

export function renderHeaderValue(template: string, secrets: ReadonlyMap<string, string>): string {
  const value = renderTemplate(template, secrets);
  if (FORBIDDEN.test(value)) {
    throw new AivaultError('CREDENTIAL_INVALID', 'a rendered credential value contains CR, LF or NUL; the secret is not usable in a header');
  }
  return value;
}

export function renderQueryValue(template: string, secrets: ReadonlyMap<string, string>): string {
  const value = renderTemplate(template, secrets);
  if (value.includes('\u0000')) throw new AivaultError('CREDENTIAL_INVALID', 'a rendered credential value contains NUL');
  return value;
}
