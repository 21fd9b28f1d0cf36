// Token buckets per (agent, capability): `count` requests per `periodMs`, refilled
// continuously, bursting up to `count`. The buckets live in storage and each take is one
// atomic read-modify-write, so every process (every daemon replica) draws on one budget.

import type { BucketState, SharedStateStorage } from '../storage/types.ts';

export interface Rate {
  count: number;
  periodMs: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until one request would be allowed (for Retry-After). */
  retryAfter: number;
}

const UNITS: Record<string, number> = { s: 1000, sec: 1000, second: 1000, m: 60_000, min: 60_000, minute: 60_000, h: 3600_000, hour: 3600_000, d: 86_400_000, day: 86_400_000 };

/** "60/min", "10/s", "1000/hour", "5000/day". */
export function parseRate(text: string): Rate | undefined {
  const m = /^(\d{1,9})\/(s|sec|second|m|min|minute|h|hour|d|day)$/.exec(text.trim());
  if (!m || Number(m[1]) < 1) return undefined;
  return { count: Number(m[1]), periodMs: UNITS[m[2]!]! };
}

/** One take from a bucket: refill for the time since it was last touched, then spend a token if there is one. */
export function takeToken(state: BucketState | undefined, rate: Rate, now: number): { state: BucketState; result: RateDecision } {
  const perMs = rate.count / rate.periodMs;
  // A clock that stepped back refills nothing rather than draining the bucket.
  const tokens = state ? Math.min(rate.count, state.tokens + Math.max(0, now - state.at) * perMs) : rate.count;
  if (tokens >= 1) return { state: { tokens: tokens - 1, at: now }, result: { allowed: true, retryAfter: 0 } };
  return { state: { tokens, at: now }, result: { allowed: false, retryAfter: Math.max(1, Math.ceil((1 - tokens) / perMs / 1000)) } };
}

export class RateLimiter {
  readonly #storage: Pick<SharedStateStorage, 'updateBucket'>;
  readonly #now: () => number;

  constructor(storage: Pick<SharedStateStorage, 'updateBucket'>, now: () => number = Date.now) {
    this.#storage = storage;
    this.#now = now;
  }

  take(key: string, rate: Rate): Promise<RateDecision> {
    const now = this.#now();
    return this.#storage.updateBucket(key, (state) => takeToken(state, rate, now));
  }
}
