// `aivault secrets validate`: does the provider accept the stored key? The check is the
// provider's declared cheap request (registry `validate`), sent through the broker like
// any invoke (allow-lists, injection, scrubbing, audit). Only a verdict comes back: the
// response body is read to decide and dropped, never shown.

import { AivaultError } from '../errors.ts';
import { OWNER_LOCAL, currentActor } from '../audit/actor.ts';
import type { Services } from '../services.ts';

export type Verdict = 'valid' | 'invalid' | 'indeterminate';

export interface ValidationResult {
  name: string;
  scope: string;
  provider: string | null;
  verdict: Verdict;
  /** Why, in a word: the upstream status, or the error code that kept the check from an answer. */
  reason: string;
  capability: string | null;
  status: number | null;
}

/** Enough of a body to read one JSON flag; the capability's own response cap still applies. */
const MAX_VERDICT_BODY = 256 * 1024;

async function readJsonField(body: AsyncIterable<unknown>, field: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += (c as Buffer).length;
    if (size <= MAX_VERDICT_BODY) chunks.push(c as Buffer);
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>)[field] : undefined;
  } catch {
    return undefined;
  }
}

export async function validateSecret({ vault, registry, catalog, broker }: Services, reference: string, scope?: string): Promise<ValidationResult> {
  const info = await vault.describeSecret(reference, scope);
  const base = { name: info.name, scope: info.scope, provider: info.pinnedProvider };
  const finish = async (verdict: Verdict, reason: string, capability: string | null, status: number | null): Promise<ValidationResult> => {
    await vault.audit.append({ actor: currentActor() ?? OWNER_LOCAL, action: 'secret.validate', target: `secret:${info.name}@${info.scope}`, ...(capability ? { capability } : {}), decision: 'allow', reason: `${verdict}:${reason}` });
    return { ...base, verdict, reason, capability, status };
  };
  if (!info.pinnedProvider) {
    throw new AivaultError('INVALID_ARGUMENT', `${info.name} is not pinned to a registry provider; validation sends the provider's declared check`);
  }
  const check = registry.provider(info.pinnedProvider).validate;
  if (!check) return finish('indeterminate', 'NO_CHECK_DECLARED', null, null);
  // Checked as a caller in the secret's own scope would use it.
  const capability = await catalog.resolveCapability(check.capability, info.scope);
  if (![...capability.credential.bindings.values()].includes(info.id)) {
    // A name the credential in use does not use (another alternative's): the check would test another key.
    return finish('indeterminate', 'SECRET_NOT_IN_CREDENTIAL', check.capability, null);
  }
  let status: number;
  try {
    const response = await broker.invoke({
      capability: check.capability,
      method: check.method,
      path: check.path,
      headers: check.contentType ? [['content-type', check.contentType]] : [],
      ...(check.body !== undefined ? { body: Buffer.from(check.body, 'utf8') } : {}),
    }, { scope: info.scope });
    status = response.status;
    const flag = check.okField && status >= 200 && status < 300 ? await readJsonField(response.body, check.okField) : (response.body.resume(), undefined);
    await response.done;
    if (status === 401 || status === 403) return finish('invalid', `HTTP_${status}`, check.capability, status);
    if (status < 200 || status >= 300) return finish('indeterminate', `HTTP_${status}`, check.capability, status);
    if (check.okField && flag !== true) return finish(flag === false ? 'invalid' : 'indeterminate', `${check.okField.toUpperCase()}_${String(flag).toUpperCase()}`, check.capability, status);
    return finish('valid', `HTTP_${status}`, check.capability, status);
  } catch (err) {
    if (!(err instanceof AivaultError)) throw err;
    // The key was never judged: a policy refusal, a missing partner secret, an unreachable upstream.
    return finish('indeterminate', err.code, check.capability, null);
  }
}
