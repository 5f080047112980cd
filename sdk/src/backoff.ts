/**
 * Reconnect delays: exponential with jitter, so a server restart is not met by every
 * client at the same instant. Pure (the random source is injectable) for unit tests.
 */
export interface BackoffOptions {
  /** Delay before the first retry, ms (default 300). */
  initialMs?: number;
  /** Ceiling, ms (default 8000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Spread around the nominal delay, 0..1 (default 0.25: ±25 %). */
  jitter?: number;
  /** A number in [0, 1) (default Math.random). */
  random?: () => number;
}

/** The delay before retry `attempt` (0-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { initialMs = 300, maxMs = 8000, factor = 2, jitter = 0.25, random = Math.random } = options;
  const nominal = Math.min(initialMs * factor ** Math.max(0, attempt), maxMs);
  const spread = nominal * jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(nominal + spread, maxMs)));
}

/**
 * Counts attempts and hands out their delays; `reset()` after a success. `exhausted` is
 * true once `maxAttempts` delays were given (the caller then gives up or changes course,
 * as the room does when resuming turns into a full rejoin).
 */
export class Backoff {
  #attempt = 0;
  constructor(private readonly options: BackoffOptions & { maxAttempts?: number } = {}) {}

  get attempt(): number {
    return this.#attempt;
  }

  get exhausted(): boolean {
    return this.options.maxAttempts !== undefined && this.#attempt >= this.options.maxAttempts;
  }

  /** The delay before the next attempt, and counts it. */
  next(): number {
    return backoffDelay(this.#attempt++, this.options);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
