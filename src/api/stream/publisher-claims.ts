import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { NoRespondersError, subjectToken, type Bus } from '../../ports/bus/bus.js';
import { pingSubject, type Membership } from '../../ports/membership/membership.js';
import type { KvBucket, Store } from '../../ports/store/store.js';

/** Who publishes a channel, cluster-wide. */
export interface PublisherClaim {
  /** This claim's own id: only the publisher that made it gives it up. */
  id: string;
  node: string;
  /** The node's process: one restarted under the same id holds none of its old claims. */
  instance: string;
  /** The publishing key: receivers on every node must present it. */
  key: string;
  /** ISO time the claim was made. */
  since: string;
}

const CLAIM = z.object({
  id: z.string().min(1).max(64),
  node: z.string().min(1).max(256),
  instance: z.string().max(256),
  key: z.string().max(1024),
  since: z.string().max(64),
});

/** A release the store refused (NATS away) is tried again this often, this many times. */
const RELEASE_RETRY_MS = 5000;
const RELEASE_ATTEMPTS = 60;
/** How long a claim's node has to answer whether it still runs. */
const PING_TIMEOUT_MS = 1500;

/**
 * One publisher per channel across the cluster: a record per channel in the store
 * (bucket `stream-publishers`, key = the channel id, already of the store alphabet),
 * made with create-if-absent so of two publishers racing on two nodes exactly one wins.
 * A claim whose node has gone (or restarted) is taken over with compare-and-set; the
 * others sweep a gone node's claims when membership says so.
 */
export class PublisherClaims {
  private readonly bucket: KvBucket<unknown>;
  /** Releases under way here: a publisher arriving on the same channel waits for its own node's. */
  private readonly releasing = new Map<string, Promise<void>>();
  private readonly retries = new Set<NodeJS.Timeout>();
  readonly selfId: string;
  readonly instance: string;

  constructor(
    store: Store,
    private readonly membership: Membership,
    private readonly bus: Bus,
  ) {
    this.bucket = store.bucket<unknown>('stream-publishers');
    this.selfId = membership.selfId;
    this.instance = membership.nodes().find((n) => n.id === this.selfId)?.instance ?? '';
  }

  /**
   * The claim's id when this node now publishes `channel` with `key`; undefined when
   * another live node does. The caller holds the channel's local reservation, so a claim
   * of this very process is stale (a release the store missed) and is taken over.
   */
  async claim(channel: string, key: string): Promise<string | undefined> {
    await this.releasing.get(channel);
    const mine: PublisherClaim = {
      id: randomUUID(),
      node: this.selfId,
      instance: this.instance,
      key,
      since: new Date().toISOString(),
    };
    if (await this.bucket.create(channel, mine)) return mine.id;
    const entry = await this.bucket.entry(channel);
    if (!entry) return (await this.bucket.create(channel, mine)) ? mine.id : undefined;
    const held = asClaim(entry.value);
    if (held && !this.isMine(held) && this.live(held) && (await this.answers(held))) return undefined;
    // Its node is gone, or it is an earlier life (or a missed release) of this one.
    return (await this.bucket.update(channel, mine, entry.revision)) ? mine.id : undefined;
  }

  /**
   * Gives up claim `id` of `channel` (nothing if another claim holds it by now). A store
   * out of reach is tried again later, so the channel does not stay claimed for good.
   */
  release(channel: string, id: string): Promise<void> {
    const run = (async () => {
      await this.releasing.get(channel);
      await this.deleteIfHeld(channel, id);
    })();
    const done = run.catch(() => this.retryRelease(channel, id, 1));
    this.releasing.set(channel, done);
    void done.then(() => {
      if (this.releasing.get(channel) === done) this.releasing.delete(channel);
    });
    return run;
  }

  close(): void {
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
  }

  async holder(channel: string): Promise<PublisherClaim | undefined> {
    return asClaim(await this.bucket.get(channel));
  }

  isMine(c: PublisherClaim): boolean {
    return c.node === this.selfId && c.instance === this.instance;
  }

  /** Deletes the claims of nodes that are gone: one (`nodeGone`) or an earlier life of this one. */
  async sweep(gone: (c: PublisherClaim) => boolean): Promise<number> {
    let n = 0;
    for (const channel of await this.bucket.keys()) {
      const entry = await this.bucket.entry(channel);
      const held = entry && asClaim(entry.value);
      if (!entry || !held || !gone(held)) continue;
      // Only the claim read: a channel claimed again meanwhile is left alone.
      if (await this.bucket.deleteIf(channel, entry.revision)) n++;
    }
    return n;
  }

  private live(c: PublisherClaim): boolean {
    if (c.node === this.selfId) return c.instance === this.instance;
    return this.membership.isAlive(c.node);
  }

  /**
   * Whether the claim's node still runs that instance. Killed, its NATS subscriptions died
   * with its connection at once, while membership takes up to 8 s to call it gone: so a
   * publisher reconnecting through another node right after a crash need not wait. No
   * answer in time (a busy node) counts as alive.
   */
  private async answers(c: PublisherClaim): Promise<boolean> {
    try {
      const answer = await this.bus.request(pingSubject(subjectToken(c.node)), '', {
        timeoutMs: PING_TIMEOUT_MS,
      });
      return new TextDecoder().decode(answer) === c.instance;
    } catch (err) {
      return !(err instanceof NoRespondersError);
    }
  }

  private async deleteIfHeld(channel: string, id: string): Promise<void> {
    const entry = await this.bucket.entry(channel);
    if (!entry || asClaim(entry.value)?.id !== id) return;
    // Only the claim read, so a claim taken over meanwhile is left alone.
    await this.bucket.deleteIf(channel, entry.revision);
  }

  private retryRelease(channel: string, id: string, attempt: number): void {
    if (attempt > RELEASE_ATTEMPTS) return;
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      this.deleteIfHeld(channel, id).catch(() => this.retryRelease(channel, id, attempt + 1));
    }, RELEASE_RETRY_MS);
    timer.unref();
    this.retries.add(timer);
  }
}

function asClaim(v: unknown): PublisherClaim | undefined {
  const parsed = CLAIM.safeParse(v);
  return parsed.success ? parsed.data : undefined;
}
