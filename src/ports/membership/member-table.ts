import type { NodeInfo } from './membership.js';

interface Member {
  info: NodeInfo;
  /** Local monotonic time of its last heartbeat seen here (never the sender's clock). */
  seenAt: number;
}

/**
 * Who is alive, from the heartbeats this node has seen: pure bookkeeping, no I/O, so the
 * rules are in one place. A node is gone when it deleted its entry (a clean stop), when
 * its id comes back with another instance (it restarted), or when no heartbeat of it has
 * been seen for `staleMs`. Ages are measured on this node's clock from when each
 * heartbeat arrived, so clocks of different machines never need to agree.
 *
 * While this node's own heartbeats stop coming back (its NATS link is down), nobody is
 * declared gone: the silence is ours, not theirs. When they come back, every node gets a
 * fresh `staleMs` to be heard again.
 */
export class MemberTable {
  private readonly members = new Map<string, Member>();
  private selfSeenAt: number;
  private suspended = false;

  constructor(
    private readonly self: NodeInfo,
    private readonly staleMs: number,
    private readonly emit: (event: 'nodeJoined' | 'nodeGone', info: NodeInfo) => void,
    now: number,
  ) {
    this.members.set(self.id, { info: self, seenAt: now });
    this.selfSeenAt = now;
  }

  /** A heartbeat (or the first announcement) of `info`. */
  seen(info: NodeInfo, now: number): void {
    if (info.id === this.self.id) {
      // Another instance under our id was refused at its start; its entry is not ours.
      if (info.instance !== this.self.instance) return;
      this.selfSeenAt = now;
      if (this.suspended) {
        this.suspended = false;
        for (const m of this.members.values()) m.seenAt = now;
      }
      return;
    }
    const known = this.members.get(info.id);
    if (known && known.info.instance === info.instance) {
      known.info = info;
      known.seenAt = now;
      return;
    }
    if (known) {
      this.members.delete(info.id);
      this.emit('nodeGone', known.info);
    }
    this.members.set(info.id, { info, seenAt: now });
    this.emit('nodeJoined', info);
  }

  /** Its entry was deleted: it left cleanly. */
  left(id: string): void {
    if (id === this.self.id) return;
    const known = this.members.get(id);
    if (!known) return;
    this.members.delete(id);
    this.emit('nodeGone', known.info);
  }

  /** Drops the nodes not heard from for `staleMs`; called about once a second. */
  sweep(now: number): void {
    if (now - this.selfSeenAt > this.staleMs) {
      this.suspended = true;
      return;
    }
    for (const [id, m] of this.members) {
      if (id === this.self.id || now - m.seenAt <= this.staleMs) continue;
      this.members.delete(id);
      this.emit('nodeGone', m.info);
    }
  }

  /** Updates what this node says about itself (its own entry is not echoed into the table). */
  setSelf(info: NodeInfo): void {
    const me = this.members.get(this.self.id);
    if (me) me.info = info;
  }

  /** How long this node's own heartbeats have not come back through the watch. */
  selfSilentFor(now: number): number {
    return now - this.selfSeenAt;
  }

  nodes(): NodeInfo[] {
    return [...this.members.values()].map((m) => m.info);
  }

  has(id: string): boolean {
    return this.members.has(id);
  }

  /** Milliseconds since each node was last heard from (for the ops route). */
  ages(now: number): Map<string, number> {
    return new Map(
      [...this.members].map(([id, m]) => [id, id === this.self.id ? now - this.selfSeenAt : now - m.seenAt]),
    );
  }
}
