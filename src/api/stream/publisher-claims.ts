import { z } from 'zod';
import type { Membership } from '../../ports/membership/membership.js';
import type { KvBucket, Store } from '../../ports/store/store.js';

/** Who publishes a channel, cluster-wide. */
export interface PublisherClaim {
  node: string;
  /** The node's process: one restarted under the same id holds none of its old claims. */
  instance: string;
  /** The publishing key: receivers on every node must present it. */
  key: string;
  /** ISO time the claim was made. */
  since: string;
}

const CLAIM = z.object({
  node: z.string().min(1).max(256),
  instance: z.string().max(256),
  key: z.string().max(1024),
  since: z.string().max(64),
});

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
  readonly selfId: string;
  readonly instance: string;

  constructor(
    store: Store,
    private readonly membership: Membership,
  ) {
    this.bucket = store.bucket<unknown>('stream-publishers');
    this.selfId = membership.selfId;
    this.instance = membership.nodes().find((n) => n.id === this.selfId)?.instance ?? '';
  }

  /** True when this node now publishes `channel` with `key`; false when another does. */
  async claim(channel: string, key: string): Promise<boolean> {
    await this.releasing.get(channel);
    const mine: PublisherClaim = {
      node: this.selfId,
      instance: this.instance,
      key,
      since: new Date().toISOString(),
    };
    if (await this.bucket.create(channel, mine)) return true;
    const entry = await this.bucket.entry(channel);
    if (!entry) return this.bucket.create(channel, mine);
    const held = asClaim(entry.value);
    if (held && this.live(held)) return false;
    // Its node is gone (or it is an earlier life of this one): the channel is free.
    return this.bucket.update(channel, mine, entry.revision);
  }

  /** Gives the channel up, if this node holds it. */
  release(channel: string): Promise<void> {
    const run = (async () => {
      await this.releasing.get(channel);
      const held = asClaim(await this.bucket.get(channel));
      if (held && this.isMine(held)) await this.bucket.delete(channel);
    })();
    const done = run.catch(() => undefined);
    this.releasing.set(channel, done);
    void done.then(() => {
      if (this.releasing.get(channel) === done) this.releasing.delete(channel);
    });
    return run;
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
      // Compare-and-set to nothing first: a channel claimed again meanwhile is left alone.
      if (await this.bucket.update(channel, null, entry.revision)) {
        await this.bucket.delete(channel);
        n++;
      }
    }
    return n;
  }

  private live(c: PublisherClaim): boolean {
    if (c.node === this.selfId) return c.instance === this.instance;
    return this.membership.isAlive(c.node);
  }
}

function asClaim(v: unknown): PublisherClaim | undefined {
  const parsed = CLAIM.safeParse(v);
  return parsed.success ? parsed.data : undefined;
}
