import { z } from 'zod';
import type { KvBucket, Store } from '../../ports/store/store.js';

/** One node process holding at least one of the user's connections. */
export interface Holder {
  node: string;
  /** The process's instance: a node restarted under the same id holds nothing of the old one's. */
  instance: string;
}

/** A user's record: the one conversation they are in, and where their connections are. */
export interface BeepUser {
  conversation: string | null;
  holders: Holder[];
}

const HOLDER = z.object({ node: z.string().min(1).max(256), instance: z.string().max(256) });
const USER = z.object({
  conversation: z.string().min(1).max(256).nullable(),
  holders: z.array(HOLDER).max(1024),
});

/** Compare-and-set retries before giving up on a record written that often at once. */
const CAS_ATTEMPTS = 20;

/**
 * Beep's users across nodes, in the store (bucket `beep-users`, one record per user id):
 * which conversation the user is in (one, cluster-wide) and which node processes hold
 * their connections, so a `/join` on any node reaches them. Every change is a
 * compare-and-set on the record, so concurrent joins and connections on different nodes
 * serialise: a node that adds itself as a holder reads the conversation written before
 * it, and a join sees every holder added before it. The record goes when its last holder
 * leaves (the user's last connection closed, or its node died).
 */
export class BeepUserBook {
  private readonly bucket: KvBucket<unknown>;

  constructor(store: Store) {
    this.bucket = store.bucket<unknown>('beep-users');
  }

  async get(userid: string): Promise<BeepUser | undefined> {
    return asUser(await this.bucket.get(userKey(userid)));
  }

  /** Puts the user in `conversation`; resolves with the holders to tell. */
  async setConversation(userid: string, conversation: string): Promise<Holder[]> {
    return (await this.change(userid, (u) => ({ ...u, conversation }))).holders;
  }

  /** Adds `holder` (idempotent); resolves with the record as written. */
  async addHolder(userid: string, holder: Holder): Promise<BeepUser> {
    return this.change(userid, (u) =>
      u.holders.some((h) => sameHolder(h, holder)) ? u : { ...u, holders: [...u.holders, holder] },
    );
  }

  /** Removes the holders `gone` matches; the record goes with its last holder. */
  async removeHolders(userid: string, gone: (h: Holder) => boolean): Promise<void> {
    await this.change(userid, (u) =>
      u.holders.some(gone) ? { ...u, holders: u.holders.filter((h) => !gone(h)) } : u,
    );
  }

  /** The user ids whose record names a holder `gone` matches (a sweep after a node died). */
  async usersHeldBy(gone: (h: Holder) => boolean): Promise<string[]> {
    const out: string[] = [];
    for (const key of await this.bucket.keys()) {
      const user = asUser(await this.bucket.get(key));
      const userid = userOfKey(key);
      if (user && userid !== undefined && user.holders.some(gone)) out.push(userid);
    }
    return out;
  }

  /**
   * Applies `edit` with compare-and-set until it sticks (or changes nothing). When the
   * last holder leaves the record is deleted, conversation and all: nobody is connected
   * any more. (A user who joins before connecting has a record without holders; it stays
   * until their connections come and go.) The delete is conditional on the revision
   * read, so a holder added in between is seen and the edit runs again.
   */
  private async change(userid: string, edit: (u: BeepUser) => BeepUser): Promise<BeepUser> {
    const key = userKey(userid);
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const entry = await this.bucket.entry(key);
      const before = (entry && asUser(entry.value)) ?? { conversation: null, holders: [] };
      const after = edit(before);
      if (after === before) return before;
      if (after.holders.length === 0 && before.holders.length > 0) {
        // The last holder left: the record goes (a join of an unconnected user keeps its own).
        if (!entry) return after;
        if (await this.bucket.deleteIf(key, entry.revision)) return after;
        continue;
      }
      const written = entry
        ? await this.bucket.update(key, after, entry.revision)
        : await this.bucket.create(key, after);
      if (written) return after;
    }
    throw new Error(`beep: the record of a user changed ${CAS_ATTEMPTS} times in a row; giving up`);
  }
}

export function sameHolder(a: Holder, b: Holder): boolean {
  return a.node === b.node && a.instance === b.instance;
}

function asUser(v: unknown): BeepUser | undefined {
  const parsed = USER.safeParse(v);
  return parsed.success ? parsed.data : undefined;
}

/** A user id as one store key: `u=` + base64url (ids may hold any character but `/` and controls). */
function userKey(userid: string): string {
  return `u=${Buffer.from(userid, 'utf8').toString('base64url')}`;
}

function userOfKey(key: string): string | undefined {
  return key.startsWith('u=') ? Buffer.from(key.slice(2), 'base64url').toString('utf8') : undefined;
}
