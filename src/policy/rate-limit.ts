// Token buckets per (agent, capability): `count` requests per `periodMs`, refilled
// continuously, bursting up to `count`. In the memory of the process that enforces them.

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

export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  take(key: string, rate: Rate): RateDecision {
    const now = this.#now();
    const perMs = rate.count / rate.periodMs;
    const b = this.#buckets.get(key) ?? { tokens: rate.count, at: now };
    b.tokens = Math.min(rate.count, b.tokens + (now - b.at) * perMs);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfter: 0 };
    }
    return { allowed: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)) };
  }
}
