import type { NodeInfo } from './membership.js';

interface Member {
  info: NodeInfo;
  /** Local monotonic time of its last heartbeat seen here (never the sender's clock). */
  seenAt: number;
}

/**
 * Who is alive, from the heartbeats this node has seen: pure bookkeeping, no I/O, so the
 * rules are in one place. A node is gone when it deleted its entry (a clean stop), when
 * its id comes back with another instance (it restarted), or when it is stale: this
 * node's own heartbeat came back through the watch more than `staleMs` after that node's
 * last one. Ages are measured on this node's clock from when each heartbeat arrived, so
 * clocks of different machines never need to agree.
 *
 * Judging staleness only when our own heartbeat comes back means the watch is shown to
 * work at that moment: while our own heartbeats do not come back (our NATS link is down,
 * the watch is stuck) nobody is declared gone, since the silence is ours, not theirs.
 * When ours come back after a gap longer than `selfGapMs` (about one and a half
 * heartbeats), every node gets a fresh `staleMs` to be heard again.
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
    private readonly selfGapMs = staleMs / 2,
  ) {
    this.members.set(self.id, { info: self, seenAt: now });
    this.selfSeenAt = now;
  }

  /** A heartbeat (or the first announcement) of `info`. */
  seen(info: NodeInfo, now: number): void {
    if (info.id === this.self.id) {
      // Another instance under our id was refused at its start; its entry is not ours.
      if (info.instance !== this.self.instance) return;
      this.ownHeartbeat(now);
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

  private ownHeartbeat(now: number): void {
    const gap = now - this.selfSeenAt;
    this.selfSeenAt = now;
    this.suspended = false;
    if (gap > this.selfGapMs) {
      for (const m of this.members.values()) m.seenAt = now;
      return;
    }
    for (const [id, m] of this.members) {
      if (id === this.self.id || now - m.seenAt <= this.staleMs) continue;
      this.members.delete(id);
      this.emit('nodeGone', m.info);
    }
  }

  /** Its entry was deleted: it left cleanly. */
  left(id: string): void {
    if (id === this.self.id) return;
    const known = this.members.get(id);
    if (!known) return;
    this.members.delete(id);
    this.emit('nodeGone', known.info);
  }

  /** Notes, about once a second, whether our own heartbeats have stopped coming back. */
  sweep(now: number): void {
    if (now - this.selfSeenAt > this.selfGapMs) this.suspended = true;
  }

  /** Updates what this node says about itself (its own entry is not echoed into the table). */
  setSelf(info: NodeInfo): void {
    const me = this.members.get(this.self.id);
    if (me) me.info = info;
  }

  /** True while this node's own heartbeats are not coming back (nobody is judged meanwhile). */
  get paused(): boolean {
    return this.suspended;
  }

  /** How long this node's own heartbeats have not come back through the watch. */
  selfSilentFor(now: number): number {
    return now - this.selfSeenAt;
  }

  nodes(): NodeInfo[] {
    return [...this.members.values()].map((m) => m.info);
  }

  /** Whether this very instance is live here already. */
  knows(info: NodeInfo): boolean {
    return this.members.get(info.id)?.info.instance === info.instance;
  }

  has(id: string): boolean {
    return this.members.has(id);
  }

  /** Milliseconds since `id` was last heard from; undefined when it is not live. */
  heardMsAgo(id: string, now: number): number | undefined {
    if (id === this.self.id) return now - this.selfSeenAt;
    const m = this.members.get(id);
    return m ? now - m.seenAt : undefined;
  }
}
