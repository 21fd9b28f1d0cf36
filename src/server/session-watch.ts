// A WebSocket session outlives its upgrade, so what admitted it is checked again while it
// is open: every tick, sessions whose grant has expired end, and when the vault's generation
// has moved (any process, any replica: revoke, revoke-grant, a capability deleted…) each
// session's agent, grant and capability are read again, and those no longer admitted end;
// those still admitted get the scrubber for what their agent can reach now.

import type { Logger } from 'pino';
import { AivaultError, errorKind } from '../errors.ts';
import type { WebSocketPlan } from '../broker/broker.ts';
import type { Scrubber } from '../broker/scrub/scrubber.ts';

/** How often open sessions are checked: a withdrawn admission ends a session within about this. */
export const SESSION_CHECK_MS = 1_000;

export interface Watched {
  plan: Pick<WebSocketPlan, 'standing'>;
  /** The generation this session's admission was last known good at. */
  generation: number;
  expiresAt: number | null;
  /** Ends the session; `reason` is the code of the rule that no longer admits it. */
  end(reason: AivaultError): void;
  /** Scrubs what follows with `scrubber` (the set of secrets to scrub may have grown). */
  rescrub(scrubber: Scrubber): void;
}

export class SessionWatch {
  readonly #sessions = new Set<Watched>();
  readonly #generation: () => Promise<number>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(generation: () => Promise<number>, log: Logger) {
    this.#generation = generation;
    this.#log = log;
  }

  /** Watches `session` until the returned function is called. */
  add(session: Watched): () => void {
    this.#sessions.add(session);
    this.#schedule();
    return () => this.#sessions.delete(session);
  }

  #schedule(): void {
    if (this.#timer || this.#sessions.size === 0) return;
    this.#timer = setTimeout(() => {
      void this.#check()
        .catch((err: unknown) => this.#log.warn({ kind: errorKind(err) }, 'websocket session check failed; retrying'))
        .finally(() => {
          this.#timer = undefined;
          this.#schedule();
        });
    }, SESSION_CHECK_MS);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    const now = Date.now();
    for (const s of this.#sessions) {
      if (s.expiresAt !== null && s.expiresAt <= now) this.#end(s, new AivaultError('GRANT_EXPIRED', 'the grant that admitted this session has expired'));
    }
    if (this.#sessions.size === 0) return;
    let generation: number;
    try {
      generation = await this.#generation();
    } catch {
      // Storage unreachable: nothing can be re-checked; the next tick tries again.
      return;
    }
    for (const s of [...this.#sessions]) {
      if (s.generation === generation) continue;
      try {
        const standing = await s.plan.standing();
        if ('refused' in standing) this.#end(s, standing.refused);
        else {
          Object.assign(s, { generation, expiresAt: standing.expiresAt });
          s.rescrub(standing.scrubber);
        }
      } catch (err) {
        this.#log.warn({ kind: errorKind(err) }, 'websocket session re-check failed; retrying');
      }
    }
  }

  #end(s: Watched, reason: AivaultError): void {
    if (!this.#sessions.delete(s)) return;
    s.end(reason);
  }
}
