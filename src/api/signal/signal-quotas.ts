import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { IdentityRegistry } from '../../core/identity-registry.js';
import { keyedLimiterOrNone, type KeyedRateLimiter } from '../../lib/keyed-rate-limiter.js';
import { PeriodicSweep, sweepIntervalMs } from '../../lib/periodic-sweep.js';
import type { Presence } from '../../core/presence.js';

const DAY_MS = 86_400_000;
/** A used name's stamp is rewritten at most this often (and at most every quarter TTL). */
const TOUCH_EVERY_MS = 3_600_000;

/** A refusal of `/v1/register` for the client's address: 429 with this message. */
export interface QuotaRefusal {
  retryAfterSeconds: number;
  message: string;
}

/**
 * What keeps Signal names from piling up: per-IP limits on `/v1/register` (a request
 * rate, and new names a day) and the expiry of names nobody has used for
 * `SIGNAL_NAME_TTL_DAYS`. One per surface, shared by its prefixes.
 */
export class SignalQuotas {
  /** How stale a name's last-used stamp may get before a use rewrites it. */
  readonly touchEveryMs: number;
  private readonly requests: KeyedRateLimiter | undefined;
  private readonly newNames: KeyedRateLimiter | undefined;
  private readonly sweep: PeriodicSweep | undefined;

  constructor(
    private readonly config: Config['signal'],
    identities: IdentityRegistry,
    presence: Presence,
    log: Logger,
  ) {
    this.requests = keyedLimiterOrNone(config.registerRatePerMinute, 60, config.registerBurst);
    // N names a day as a bucket of N refilling over 24 h: a rolling day, no calendar.
    this.newNames = keyedLimiterOrNone(config.maxNamesPerIpPerDay, DAY_MS / 1000, config.maxNamesPerIpPerDay);
    const ttlMs = config.nameTtlDays * DAY_MS;
    this.touchEveryMs = ttlMs > 0 ? Math.min(TOUCH_EVERY_MS, ttlMs / 4) : Number.POSITIVE_INFINITY;
    this.sweep =
      ttlMs > 0
        ? new PeriodicSweep(
            'signal-names',
            sweepIntervalMs(ttlMs),
            // A user connected to any node is never expired, however old its stamp: the
            // cluster is asked (a bus request answered by the node holding the user).
            (active) =>
              identities.removeUnused(Date.now() - ttlMs, (user) => presence.connectedAnywhere(user), active),
            log,
          )
        : undefined;
  }

  /** Counts one `/v1/register` request from `ip`; a refusal when it is over the rate. */
  admitRequest(ip: string): QuotaRefusal | undefined {
    const waitMs = this.requests?.take(ip) ?? 0;
    if (waitMs === 0) return undefined;
    return {
      retryAfterSeconds: Math.ceil(waitMs / 1000),
      message: `too many registrations from your address; at most ${this.config.registerRatePerMinute} a minute`,
    };
  }

  /** A refusal when `ip` has registered its day's worth of new names. */
  newNameRefusal(ip: string): QuotaRefusal | undefined {
    const waitMs = this.newNames?.check(ip) ?? 0;
    if (waitMs === 0) return undefined;
    return {
      retryAfterSeconds: Math.ceil(waitMs / 1000),
      message: `at most ${this.config.maxNamesPerIpPerDay} new names a day from one address`,
    };
  }

  /** Charges a new name to `ip`'s daily allowance. */
  registered(ip: string): void {
    this.newNames?.take(ip);
  }

  /** Stops the sweep; resolves when it no longer touches the store. */
  async close(): Promise<void> {
    await this.sweep?.close();
  }
}
