import type { Logger } from 'pino';

/** A member's microphone (`mic`: an upload open) and headset (`hds`: a listener open). */
interface AudioConf {
  mic: boolean;
  hds: boolean;
}

/** What a flush hands on: each changed member's state now, and who to tell. */
export interface MemberNoticeBatch {
  /** The members to tell (the room's members at the flush; each skips its own change). */
  to: string[];
  changes: { id: string; mic: boolean; hds: boolean }[];
}

export interface MemberNoticesOptions<R> {
  /** How long changes of one room are gathered before they go out. */
  windowMs: number;
  /**
   * Changes sent per turn of the event loop (default 256): a batch of more (a room of
   * 2,000 emptying at once) goes out in parts, one per turn, in order.
   */
  changesPerTurn?: number;
  /** The room's members now; undefined once the room is gone (nothing is sent). */
  members(room: R): string[] | undefined;
  send(room: R, batch: MemberNoticeBatch): void;
  log: Logger;
}

interface Pending {
  timer: NodeJS.Timeout;
  changes: Map<string, AudioConf>;
}

/** Each change costs its event's encoding, each part a message per member. */
const CHANGES_PER_TURN = 256;

/**
 * A room's `setAudioConf` notices, gathered for `windowMs` and sent as one batch: each
 * changed member once, with its state at the flush, to the members in the room then.
 * Sent one per change to every member, a room filling or emptying at once costs
 * O(members²) events (2,000 listeners hanging up: seconds of event loop, #17.3); this
 * way a burst of N changes costs one batch per member, and members who left in the same
 * window are not told. A change that ends where the last notice left the member (joined
 * and left within a window) is not sent at all. Every member still ends with each other
 * member's latest state, and a member's notices keep their order.
 */
export class MemberNotices<R extends object> {
  private readonly pending = new Map<R, Pending>();
  /** Per room, each member's state as last sent (members at mic 0, hds 0 are absent). */
  private readonly sent = new WeakMap<R, Map<string, AudioConf>>();
  /** Parts of flushed batches not sent yet, oldest first (see `sendSome`). */
  private readonly outbox: { room: R; batch: MemberNoticeBatch }[] = [];
  private sending: NodeJS.Immediate | undefined;
  private readonly sendLater = (): void => {
    this.sending = undefined;
    this.sendSome();
  };

  constructor(private readonly opts: MemberNoticesOptions<R>) {}

  change(room: R, id: string, mic: boolean, hds: boolean): void {
    let p = this.pending.get(room);
    if (!p) {
      const timer = setTimeout(() => this.flush(room), this.opts.windowMs);
      timer.unref();
      this.pending.set(room, (p = { timer, changes: new Map() }));
    }
    p.changes.set(id, { mic, hds });
  }

  /** Sends what `room` has gathered now (tests, and the timer). */
  flush(room: R): void {
    const p = this.pending.get(room);
    if (!p) return;
    this.pending.delete(room);
    clearTimeout(p.timer);
    try {
      const members = this.opts.members(room);
      if (!members) return;
      let sent = this.sent.get(room);
      if (!sent) this.sent.set(room, (sent = new Map<string, AudioConf>()));
      const changes: MemberNoticeBatch['changes'] = [];
      for (const [id, now] of p.changes) {
        const before = sent.get(id);
        if ((before?.mic ?? false) === now.mic && (before?.hds ?? false) === now.hds) continue;
        if (now.mic || now.hds) sent.set(id, now);
        else sent.delete(id);
        changes.push({ id, mic: now.mic, hds: now.hds });
      }
      if (changes.length === 0 || members.length === 0) return;
      // Parts of at most `changesPerTurn`, behind any part of an earlier batch not sent yet.
      const per = this.opts.changesPerTurn ?? CHANGES_PER_TURN;
      for (let i = 0; i < changes.length; i += per)
        this.outbox.push({ room, batch: { to: members, changes: changes.slice(i, i + per) } });
    } catch (err) {
      this.opts.log.warn({ err }, 'voip: room notices not sent');
    }
    if (!this.sending) this.sendSome();
  }

  /**
   * Sends parts of the outbox until `changesPerTurn` changes have gone in this turn, and
   * the rest in the next turns. A room emptying at once used to send its 2,000 changes
   * (an event encoded for each, then a message per remaining member) in one turn (#17.3).
   */
  private sendSome(): void {
    const per = this.opts.changesPerTurn ?? CHANGES_PER_TURN;
    let sent = 0;
    while (this.outbox.length > 0 && sent < per) {
      const { room, batch } = this.outbox.shift()!;
      sent += batch.changes.length;
      try {
        this.opts.send(room, batch);
      } catch (err) {
        this.opts.log.warn({ err }, 'voip: room notices not sent');
      }
    }
    if (this.outbox.length > 0) this.sending ??= setImmediate(this.sendLater);
  }

  /** Drops what is gathered (shutdown). */
  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.outbox.length = 0;
    if (this.sending) clearImmediate(this.sending);
    this.sending = undefined;
  }
}
