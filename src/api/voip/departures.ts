/** A stream that ended: its slot still to free. */
interface Departure {
  readonly id: string;
  readonly release: () => void;
  done: boolean;
}

export interface DepartureStats {
  /** Releases run (each a stream that ended). */
  released: number;
  /** The most releases one turn of the event loop ran. */
  largestSlice: number;
}

/**
 * Streams that ended, their slots freed a slice per turn of the event loop (#17.3).
 *
 * When 2,000 listeners of a room hang up at once, their sockets' close events come in one
 * or two poll phases of the event loop, and freeing each slot right there (the room's
 * member leaves, its notices are gathered, the side site is told) held that one turn for
 * hundreds of milliseconds, on top of Node's own work per closed socket. Queued here, the
 * close event costs Node's part only; the slots are freed `perTurn` at a time, one slice
 * per turn (setImmediate), in the order the streams ended.
 *
 * A member coming back finds its slot free: `settle(id)` frees at once what is still
 * queued for that member (the media routes call it before checking the slot), so a
 * reconnect is never told "already connected" by a stream already gone.
 */
export class Departures {
  private readonly queue: Departure[] = [];
  private head = 0;
  private readonly byMember = new Map<string, Departure[]>();
  private scheduled: NodeJS.Immediate | undefined;
  readonly stats: DepartureStats = { released: 0, largestSlice: 0 };
  private readonly nextSlice = (): void => {
    this.scheduled = undefined;
    this.slice();
  };

  constructor(
    private readonly perTurn: number,
    /** A release threw: logged, and the others go on. */
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Streams ended and not yet freed. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Queues `release` (freeing `id`'s slot); it runs in a later turn, or at `settle(id)`. */
  add(id: string, release: () => void): void {
    const d: Departure = { id, release, done: false };
    this.queue.push(d);
    const mine = this.byMember.get(id);
    if (mine) mine.push(d);
    else this.byMember.set(id, [d]);
    this.scheduled ??= setImmediate(this.nextSlice);
  }

  /** Frees now whatever is still queued for `id`. */
  settle(id: string): void {
    const mine = this.byMember.get(id);
    if (!mine) return;
    this.byMember.delete(id);
    for (const d of mine) this.run(d);
  }

  /** Frees everything queued now (shutdown). */
  drain(): void {
    while (this.head < this.queue.length) this.runAt(this.head++);
    this.reset();
  }

  private slice(): void {
    const end = Math.min(this.queue.length, this.head + this.perTurn);
    let ran = 0;
    while (this.head < end) if (this.runAt(this.head++)) ran++;
    if (ran > this.stats.largestSlice) this.stats.largestSlice = ran;
    if (this.head < this.queue.length) this.scheduled ??= setImmediate(this.nextSlice);
    else this.reset();
  }

  private reset(): void {
    this.queue.length = 0;
    this.head = 0;
  }

  private runAt(i: number): boolean {
    const d = this.queue[i]!;
    if (d.done) return false;
    const mine = this.byMember.get(d.id);
    if (mine) {
      const at = mine.indexOf(d);
      if (at >= 0) mine.splice(at, 1);
      if (mine.length === 0) this.byMember.delete(d.id);
    }
    this.run(d);
    return true;
  }

  private run(d: Departure): void {
    if (d.done) return;
    d.done = true;
    this.stats.released++;
    try {
      d.release();
    } catch (err) {
      this.onError(err);
    }
  }
}
