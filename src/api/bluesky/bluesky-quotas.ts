import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { keyedLimiterOrNone, type KeyedRateLimiter } from '../../lib/keyed-rate-limiter.js';
import { PeriodicSweep, sweepIntervalMs } from '../../lib/periodic-sweep.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { RoomOptions } from '../../core/room-types.js';
import type { RoomDirectory } from '../../core/room-directory.js';
import type { BusSubscription } from '../../ports/bus/bus.js';
import type { RoomSecrets } from '../../core/room-secrets.js';

const HOUR_MS = 3_600_000;

/**
 * A Blue Sky room's live state: open from its first request until closed or expired
 * (the durable record says whether it exists); participants who no longer publish or
 * receive anything leave it.
 */
export const conferenceRoom: RoomOptions<null> = { kind: 'conference', leaveWhenIdle: true, metadata: null };

/** A refusal of `PUT /webrtc/room` for the client's address: 429 with this message. */
export interface RoomQuotaRefusal {
  /** Absent when waiting does not help (the client must close rooms first). */
  retryAfterSeconds?: number;
  message: string;
}

/**
 * What keeps Blue Sky rooms from piling up: a per-IP rate of room creation, a cap on
 * the rooms one IP created that are still open, and the expiry of rooms nobody has
 * joined for `BLUESKY_ROOM_TTL_HOURS`. One per surface, shared by its prefixes.
 *
 * In a cluster: the rate and the open-room cap count on this node (what this node
 * created; a room closed on another node is released here by the directory's `closed`
 * event). Expiry is cluster-wide: every node sweeps the shared directory, and keeps the
 * rooms it carries publishers of fresh (`lease`), so no node expires a room in use on
 * another. Every node closes its live room when any node closes or expires it.
 */
export class BlueSkyQuotas {
  /** How stale a room's last-used stamp may get before a join rewrites it. */
  readonly touchEveryMs: number;
  private readonly requests: KeyedRateLimiter | undefined;
  private readonly joins: KeyedRateLimiter | undefined;
  /** Open rooms created on this node since start, per creator IP, and back. */
  private readonly openByIp = new Map<string, Set<string>>();
  private readonly creatorOf = new Map<string, string>();
  private readonly sweep: PeriodicSweep | undefined;
  /** Re-stamps the rooms this node carries publishers of, so other nodes' sweeps keep them. */
  private readonly lease: PeriodicSweep | undefined;
  private readonly closedSub: BusSubscription;

  constructor(
    private readonly config: Config['bluesky'],
    directory: RoomDirectory,
    secrets: RoomSecrets,
    rooms: RoomRegistry,
    log: Logger,
  ) {
    this.requests = keyedLimiterOrNone(config.roomCreateRatePerMinute, 60, config.roomCreateBurst);
    this.joins = keyedLimiterOrNone(config.joinRatePerMinute, 60, config.joinBurst);
    const ttlMs = config.roomTtlHours * HOUR_MS;
    this.touchEveryMs = ttlMs > 0 ? Math.min(HOUR_MS, ttlMs / 4) : Number.POSITIVE_INFINITY;
    // A room with a publisher is in use (subscribers' legs end with their publisher's).
    const inUse = (id: string) => (rooms.get('conference', id)?.publishers().length ?? 0) > 0;
    this.sweep =
      ttlMs > 0
        ? new PeriodicSweep(
            'bluesky-rooms',
            sweepIntervalMs(ttlMs),
            async (active) => {
              // Every node closes its live room on the directory's `closed` event.
              const removed = await directory.removeUnused(Date.now() - ttlMs, inUse, active);
              // Secured rooms' keys go with them (nothing when the room had none).
              for (const id of removed) await secrets.forget(id);
              return removed.length;
            },
            log,
          )
        : undefined;
    this.lease =
      ttlMs > 0
        ? new PeriodicSweep(
            'bluesky-room-lease',
            this.touchEveryMs,
            async (active) => {
              for (const room of rooms.list('conference')) {
                if (!active()) break;
                if (inUse(room.id)) await directory.touch(room.id, this.touchEveryMs);
              }
              return 0;
            },
            log,
          )
        : undefined;
    this.closedSub = directory.onClosed(({ id, reason }) => {
      // The cascade ends every participant's tracks and subscriptions, so every leg here.
      rooms.close('conference', id, reason);
      this.released(id);
    });
  }

  /** Counts one room creation request from `ip`; a refusal when over the rate or the cap. */
  admitCreate(ip: string): RoomQuotaRefusal | undefined {
    const waitMs = this.requests?.take(ip) ?? 0;
    if (waitMs > 0) {
      return {
        retryAfterSeconds: Math.ceil(waitMs / 1000),
        message: `too many rooms created from your address; at most ${this.config.roomCreateRatePerMinute} a minute`,
      };
    }
    const cap = this.config.maxOpenRoomsPerIp;
    if (cap > 0 && (this.openByIp.get(ip)?.size ?? 0) >= cap) {
      return { message: `at most ${cap} open rooms per address; close one (DELETE /webrtc/room/:id) first` };
    }
    return undefined;
  }

  /** Counts one participant claim (secured mode: a stored key) from `ip`. */
  admitJoin(ip: string): RoomQuotaRefusal | undefined {
    const waitMs = this.joins?.take(ip) ?? 0;
    if (waitMs === 0) return undefined;
    return {
      retryAfterSeconds: Math.ceil(waitMs / 1000),
      message: `too many joins from your address; at most ${this.config.joinRatePerMinute} a minute`,
    };
  }

  created(ip: string, id: string): void {
    let set = this.openByIp.get(ip);
    if (!set) this.openByIp.set(ip, (set = new Set()));
    set.add(id);
    this.creatorOf.set(id, ip);
  }

  /** The room was closed or expired: it no longer counts against its creator. */
  released(id: string): void {
    const ip = this.creatorOf.get(id);
    if (ip === undefined) return;
    this.creatorOf.delete(id);
    const set = this.openByIp.get(ip);
    set?.delete(id);
    if (set?.size === 0) this.openByIp.delete(ip);
  }

  /** Stops the sweeps; resolves when they no longer touch the store. */
  async close(): Promise<void> {
    this.closedSub.unsubscribe();
    await Promise.all([this.sweep?.close(), this.lease?.close()]);
  }
}
