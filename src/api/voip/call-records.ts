import type { KvBucket, KvEntry, Store } from '../../ports/store/store.js';
import { storeKey } from './store-key.js';
import type { NodeRef } from './voip-node.js';

/** A live call as the cluster knows it: who, which state, and the node that holds it. */
export interface CallRecord {
  id: string;
  caller: string;
  callee: string;
  state: 'ringing' | 'accepted';
  owner: NodeRef;
}

/** What the pair's key holds: its live call, or nothing since the last one ended. */
type PairSlot = CallRecord | { id: ''; ended: true };

const ENDED: PairSlot = { id: '', ended: true };
const PAGE = 256;

/**
 * One record per pair of parties (either way round) in the store: the pair's live call,
 * so "one live call per pair" holds across nodes. Every change is a compare-and-set on
 * the pair's revision: a call's end marks the slot ended only if the slot still names
 * that call, so it never erases a newer call that replaced it meanwhile.
 */
export class CallRecords {
  private readonly bucket: KvBucket<PairSlot>;

  constructor(store: Store) {
    this.bucket = store.bucket<PairSlot>('voip-calls');
  }

  /** The pair's live call with the slot's revision, or the revision alone (none live). */
  async slot(a: string, b: string): Promise<{ live?: CallRecord; entry?: KvEntry<PairSlot> }> {
    const entry = await this.bucket.entry(pairKey(a, b));
    if (!entry) return {};
    return isLive(entry.value) ? { live: entry.value, entry } : { entry };
  }

  /** Writes `call` into the pair's slot if it has not changed since `prev` was read. */
  claim(call: CallRecord, prev: KvEntry<PairSlot> | undefined): Promise<boolean> {
    const key = pairKey(call.caller, call.callee);
    return prev ? this.bucket.update(key, call, prev.revision) : this.bucket.create(key, call);
  }

  /** Sets the call's state if the slot still names it. */
  async setState(call: CallRecord, state: CallRecord['state']): Promise<boolean> {
    return this.change(call, { ...call, state });
  }

  /** Marks the pair's slot ended if it still names `call`; true when this did it. */
  async release(call: Pick<CallRecord, 'id' | 'caller' | 'callee'>): Promise<boolean> {
    return this.change(call, ENDED);
  }

  /** Every live call `node` holds (a page of keys at a time). */
  async *ownedBy(node: NodeRef): AsyncGenerator<CallRecord> {
    let after: string | undefined;
    for (;;) {
      const keys = await this.bucket.keysPage(after, PAGE);
      for (const k of keys) {
        const v = await this.bucket.get(k);
        if (v && isLive(v) && v.owner.id === node.id && v.owner.instance === node.instance) yield v;
      }
      if (keys.length < PAGE) return;
      after = keys[keys.length - 1];
    }
  }

  private async change(call: Pick<CallRecord, 'id' | 'caller' | 'callee'>, next: PairSlot): Promise<boolean> {
    const key = pairKey(call.caller, call.callee);
    for (let attempt = 0; attempt < 4; attempt++) {
      const e = await this.bucket.entry(key);
      if (!e || e.value.id !== call.id) return false;
      if (await this.bucket.update(key, next, e.revision)) return true;
    }
    return false;
  }
}

function isLive(v: PairSlot): v is CallRecord {
  return v.id !== '';
}

function pairKey(a: string, b: string): string {
  const [x, y] = a < b ? [a, b] : [b, a];
  return `${storeKey(x)}.${storeKey(y)}`;
}
