// The owner's per-capability policy: checked input, and how it changes what the broker
// enforces. Stored per capability id (built-in or custom), so it holds for every process.

import { AivaultError } from '../errors.ts';
import type { CapabilityLimits, CapabilityPolicy } from '../storage/types.ts';
import { MIN_SCRUB_LENGTH } from './scrub/scrubber.ts';

export interface PolicyChange {
  rateLimitPerMinute?: number | null;
  maxRequestBodyBytes?: number | null;
  maxResponseBodyBytes?: number | null;
  /** Replaces the block list when given. */
  responseBlock?: string[];
}

const MAX_RATE = 1_000_000;
const MAX_BLOCKED = 64;
const MAX_BLOCK_LENGTH = 1024;

function limit(field: keyof PolicyChange, value: number | null | undefined, max: number): number | null | undefined {
  if (value === undefined || value === null) return value;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new AivaultError('INVALID_ARGUMENT', `${field} is a whole number from 1 to ${max}`, { field });
  return value;
}

/** The policy after `change`; unspecified fields keep their current value. */
export function applyPolicyChange(current: CapabilityPolicy | undefined, change: PolicyChange, max: Required<CapabilityLimits>): CapabilityPolicy {
  const block = change.responseBlock ?? current?.responseBlock ?? [];
  if (block.length > MAX_BLOCKED) throw new AivaultError('INVALID_ARGUMENT', `at most ${MAX_BLOCKED} responseBlock strings`, { field: 'responseBlock' });
  for (const b of block) {
    // Shorter strings would redact too much of ordinary text (and are not scrubbed).
    if (b.length < MIN_SCRUB_LENGTH || b.length > MAX_BLOCK_LENGTH || /[\u0000-\u001f\u007f]/.test(b)) {
      throw new AivaultError('INVALID_ARGUMENT', `a responseBlock string is ${MIN_SCRUB_LENGTH}-${MAX_BLOCK_LENGTH} characters without control characters`, { field: 'responseBlock' });
    }
  }
  const pick = <K extends keyof PolicyChange>(k: K, fallback: number | null) => (change[k] !== undefined ? (change[k] as number | null) : fallback);
  return {
    rateLimitPerMinute: limit('rateLimitPerMinute', pick('rateLimitPerMinute', current?.rateLimitPerMinute ?? null), MAX_RATE) ?? null,
    maxRequestBodyBytes: limit('maxRequestBodyBytes', pick('maxRequestBodyBytes', current?.maxRequestBodyBytes ?? null), max.maxRequestBytes) ?? null,
    maxResponseBodyBytes: limit('maxResponseBodyBytes', pick('maxResponseBodyBytes', current?.maxResponseBodyBytes ?? null), max.maxResponseBytes) ?? null,
    responseBlock: [...new Set(block)],
    updatedAt: new Date().toISOString(),
  };
}

/** The capability's limits with the policy's body caps applied. */
export function withPolicyLimits(limits: Required<CapabilityLimits>, policy: CapabilityPolicy | undefined): Required<CapabilityLimits> {
  if (!policy) return limits;
  return {
    ...limits,
    maxRequestBytes: policy.maxRequestBodyBytes ?? limits.maxRequestBytes,
    maxResponseBytes: policy.maxResponseBodyBytes ?? limits.maxResponseBytes,
  };
}
