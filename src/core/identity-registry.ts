import type { KvBucket, Store } from '../ports/store/store.js';
import type { UserId } from './ids.js';

export interface IdentityRecord {
  registeredAt: number;
}

/**
 * Registered user names, kept in the store so they outlive a restart. A name belongs to
 * whoever registered it first; the check and the write are one atomic `create`.
 */
export class IdentityRegistry {
  private readonly bucket: KvBucket<IdentityRecord>;

  constructor(store: Store, namespace: string) {
    this.bucket = store.bucket<IdentityRecord>(`identities-${namespace}`);
  }

  /** True when the name was free and is now registered. */
  register(user: UserId): Promise<boolean> {
    return this.bucket.create(user, { registeredAt: Date.now() });
  }

  async exists(user: UserId): Promise<boolean> {
    return (await this.bucket.get(user)) !== undefined;
  }
}
