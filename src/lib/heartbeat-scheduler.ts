/** What a watched connection does when the scheduler calls on it. */
export interface HeartbeatTarget {
  /** A heartbeat is due: send a ping, or the surface's own keep-alive text. */
  beat(): void;
  /**
   * Nothing was heard in time: the previous beat went unanswered (`missed-beat`), or the
   * connection was silent for its idle timeout (`idle`). Close or terminate it; the watch
   * has already stopped.
   */
  expire(why: 'missed-beat' | 'idle'): void;
}

export interface WatchOptions {
  /** Interval of `beat` calls; 0: none. */
  beatMs?: number;
  /** With `beatMs`: expire when nothing was heard between one beat and the next (ping/pong). */
  answerRequired?: boolean;
  /** Expire after this long without hearing anything; 0: never. */
  idleMs?: number;
}

export interface HeartbeatSchedulerOptions {
  /** Resolution of the wheel: beats and expiries fall on these ticks. */
  tickMs?: number;
  /**
   * Most beats and expiries handled in one tick. Sockets that became due together (a
   * reconnect storm) are spread over the following ticks, and after their first beat
   * each keeps its own phase: the load of any number of sockets is spread across the
   * interval in batches of at most this many.
   */
  maxPerTick?: number;
  /**
   * Longest a tick may run, in ms of `now`: a tick that has used it leaves the rest of
   * the due queue to the next ticks, so a busy or slow process (pings are socket writes)
   * never holds the event loop for long: messages wait at most this long behind a tick.
   */
  tickBudgetMs?: number;
  /** A monotonic clock in ms (the wall clock may step). */
  now?: () => number;
  /** Where a throwing target is reported (it is stopped, the others go on). */
  log?: { warn(fields: Record<string, unknown>, msg: string): void };
}

/** One watched connection: `heard()` on every sign of life, `stop()` when it closes. */
export interface Watch {
  heard(): void;
  stop(): void;
}

const DUE_QUEUE = -1;
/** The clock is read once per this many handled entries, to keep a tick to its budget. */
const BUDGET_CHECK_EVERY = 16;

class Entry implements Watch {
  lastHeard: number;
  heardSinceBeat = false;
  beaten = false;
  nextBeat: number;
  /** The wheel slot holding the entry, DUE_QUEUE while it waits in the due queue. */
  slot = 0;
  stopped = false;

  constructor(
    private readonly wheel: HeartbeatScheduler,
    readonly target: HeartbeatTarget,
    readonly beatMs: number,
    readonly answerRequired: boolean,
    readonly idleMs: number,
    now: number,
  ) {
    this.lastHeard = now;
    this.nextBeat = beatMs > 0 ? now + beatMs : Infinity;
  }

  /** On the message path: two stores and a clock read, nothing scheduled. */
  heard(): void {
    this.lastHeard = this.wheel.now();
    this.heardSinceBeat = true;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.wheel.unschedule(this);
  }

  /** When the wheel next needs to look at it. */
  dueAt(): number {
    return this.idleMs > 0 ? Math.min(this.nextBeat, this.lastHeard + this.idleMs) : this.nextBeat;
  }
}

/**
 * The one heartbeat and idle-timeout mechanism for long-lived connections (Signal and
 * Stream WebSockets). The server owns one and hands it to the surfaces.
 *
 * A timing wheel: each watch sits in the slot of the tick when it is next due (its next
 * beat or its idle deadline, whichever is first), so a tick touches only the connections
 * due then, never all of them: 10,000 sockets with a 30 s heartbeat are about 17 pings
 * per 50 ms tick, not 10,000 in one synchronous sweep. A tick handles at most
 * `maxPerTick` (100) entries and stops once it has run `tickBudgetMs` (3 ms): sockets
 * that connected together are spread over the following ticks and keep that phase, so
 * no tick stalls the messages behind it (a 10,000-socket burst is paced at 2,000 pings
 * a second; beyond that rate beats come later than their interval, never in one sweep).
 * Activity (`heard`) only stamps a
 * time; an idle deadline that has moved on is found when its slot comes up, and the
 * watch is put back where it is due. The timer is unref'd and runs only while something
 * is watched.
 */
export class HeartbeatScheduler {
  readonly now: () => number;
  private readonly tickMs: number;
  private readonly maxPerTick: number;
  private readonly tickBudgetMs: number;
  private readonly slots = new Map<number, Set<Entry>>();
  /** Entries due, in order, waiting for a tick with room. */
  private due: Entry[] = [];
  private dueHead = 0;
  /** The last slot index handled. */
  private cursor: number;
  private timer: NodeJS.Timeout | undefined;
  private watched = 0;
  private closed = false;

  constructor(private readonly opts: HeartbeatSchedulerOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.tickMs = opts.tickMs ?? 50;
    this.maxPerTick = opts.maxPerTick ?? 100;
    this.tickBudgetMs = opts.tickBudgetMs ?? 3;
    this.cursor = Math.floor(this.now() / this.tickMs);
  }

  /** Connections watched now. */
  get size(): number {
    return this.watched;
  }

  watch(target: HeartbeatTarget, options: WatchOptions): Watch {
    const e = new Entry(
      this,
      target,
      options.beatMs ?? 0,
      options.answerRequired ?? false,
      options.idleMs ?? 0,
      this.now(),
    );
    if (this.closed || (e.beatMs <= 0 && e.idleMs <= 0)) {
      e.stopped = true;
      return e;
    }
    this.watched++;
    this.schedule(e);
    if (!this.timer) {
      this.cursor = Math.max(this.cursor, Math.floor(this.now() / this.tickMs));
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
    return e;
  }

  /** Stops every watch and the timer (server shutdown). */
  close(): void {
    this.closed = true;
    for (const set of this.slots.values()) for (const e of set) e.stopped = true;
    for (let i = this.dueHead; i < this.due.length; i++) this.due[i]!.stopped = true;
    this.slots.clear();
    this.due = [];
    this.dueHead = 0;
    this.watched = 0;
    this.stopTimer();
  }

  /** @internal Entry.stop */
  unschedule(e: Entry): void {
    this.watched--;
    if (e.slot !== DUE_QUEUE) {
      const set = this.slots.get(e.slot);
      if (set?.delete(e) && set.size === 0) this.slots.delete(e.slot);
    }
    // In the due queue it is skipped when reached (it is marked stopped).
    if (this.watched === 0) this.stopTimer();
  }

  /**
   * One tick: moves the slots that came due to the queue, handles at most maxPerTick of
   * it, and stops early once the tick has run for tickBudgetMs.
   */
  tick(): void {
    const now = this.now();
    const current = Math.floor(now / this.tickMs);
    if (current - this.cursor > this.slots.size) {
      // A long stall (a suspended process): visit the filled slots, not every index.
      for (const [index, set] of [...this.slots].sort((a, b) => a[0] - b[0])) {
        if (index <= current) this.takeSlot(index, set);
      }
    } else {
      for (let index = this.cursor + 1; index <= current; index++) {
        const set = this.slots.get(index);
        if (set) this.takeSlot(index, set);
      }
    }
    this.cursor = Math.max(this.cursor, current);
    let handled = 0;
    const budgetEnd = now + this.tickBudgetMs;
    while (this.dueHead < this.due.length && handled < this.maxPerTick) {
      const e = this.due[this.dueHead++]!;
      if (e.stopped) continue;
      handled++;
      this.handle(e, now);
      if (handled % BUDGET_CHECK_EVERY === 0 && this.now() >= budgetEnd) break;
    }
    if (this.dueHead === this.due.length) {
      this.due = [];
      this.dueHead = 0;
    }
  }

  private takeSlot(index: number, set: Set<Entry>): void {
    this.slots.delete(index);
    for (const e of set) {
      e.slot = DUE_QUEUE;
      this.due.push(e);
    }
  }

  private handle(e: Entry, now: number): void {
    try {
      if (e.idleMs > 0 && now - e.lastHeard >= e.idleMs) return this.expire(e, 'idle');
      if (now >= e.nextBeat) {
        if (e.answerRequired && e.beaten && !e.heardSinceBeat) return this.expire(e, 'missed-beat');
        e.beaten = true;
        e.heardSinceBeat = false;
        e.nextBeat = now + e.beatMs;
        e.target.beat();
      }
    } catch (err) {
      this.opts.log?.warn({ err }, 'heartbeat target threw; no longer watched');
      e.stop();
      return;
    }
    if (!e.stopped) this.schedule(e);
  }

  private expire(e: Entry, why: 'missed-beat' | 'idle'): void {
    e.stop();
    e.target.expire(why);
  }

  private schedule(e: Entry): void {
    // Never into a slot already handled: at the earliest the next tick.
    const index = Math.max(this.cursor + 1, Math.ceil(e.dueAt() / this.tickMs));
    let set = this.slots.get(index);
    if (!set) this.slots.set(index, (set = new Set()));
    set.add(e);
    e.slot = index;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
