import { timingSafeEqual } from 'node:crypto';
import { GopCache, type CacheMode } from './gop-cache.js';
import type { FanOutPolicy, PublisherControl, ReceiveMode, SinkEnd, StreamSink } from './stream-sink.js';

/** A receiver attached to a channel. */
export class StreamReceiver {
  /** Bytes it may run behind by right after joining: the cache replay. */
  allowance = 0;
  skipping = false;
  removed = false;
  dropped = 0;

  constructor(
    readonly sink: StreamSink,
    readonly key: string,
    readonly mode: ReceiveMode,
  ) {}
}

/**
 * Fan-out goes in slices of this many sends (a send costs some microseconds); a turn of
 * the event loop runs slices for up to FANOUT_TURN_MS, then lets I/O and timers run.
 */
export const FANOUT_SLICE_SENDS = 512;
export const FANOUT_TURN_MS = 10;
/** Chunk bytes waiting for fan-out past which the publisher's socket stops being read. */
const BACKLOG_PAUSE_BYTES = 4 << 20;

interface Publishing {
  key: string;
  streamId: string;
  control: PublisherControl;
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * One channel: at most one publisher, any number of receivers, the cache. Binary chunks
 * from the publisher go to every playing receiver in order, the same buffer to all; a
 * receiver that falls behind is skipped forward or ended, never waited for.
 */
export class StreamChannel {
  private publishing: Publishing | undefined;
  private reserved = false;
  private playing: StreamReceiver[] = [];
  private readonly waiting = new Set<StreamReceiver>();
  private readonly cache: GopCache;
  /** receive-clear-cache turns the cache off for the rest of the publishing session. */
  private cacheOff = false;
  private pendingRemovals = 0;
  // Fan-out in slices: chunks waiting, the receiver the current batch has reached, and
  // how many receivers it goes to (those that joined before it began).
  private backlog: Buffer[] = [];
  private backlogHead = 0;
  private backlogBytes = 0;
  private cursor = 0;
  /** The current batch is backlog[backlogHead, batchEnd). */
  private batchEnd = 0;
  private fanEnd = 0;
  private pumping = false;
  /** Whether this turn's pump sent anything (then the pumping ends only next turn). */
  private pumpedThisTurn = false;
  private publisherPaused = false;
  /** The publisher left while chunks still wait: it ends when they are out. */
  private endPending = false;

  /**
   * Sees every chunk the moment it enters the channel, before any fan-out: the cluster
   * relay, set while another node has receivers of a channel published here.
   */
  tap: ((chunk: Buffer) => void) | undefined;

  bytesIn = 0;
  chunksIn = 0;
  bytesOut = 0;
  dropped = 0;

  constructor(
    readonly id: string,
    cacheBytes: number,
    private readonly policy: FanOutPolicy,
    cacheMode: CacheMode = 'auto',
    /** Called when a publisher's deferred end (after its backlog) leaves the channel idle. */
    private readonly onIdle?: (c: StreamChannel) => void,
  ) {
    this.cache = new GopCache(cacheBytes, cacheMode);
  }

  get isPublishing(): boolean {
    return this.publishing !== undefined;
  }

  /** Published on another node and fed here by the cluster relay. */
  get relayed(): boolean {
    return this.publishing?.control.relayed === true;
  }

  get streamId(): string | undefined {
    return this.publishing?.streamId;
  }

  get receiverCount(): number {
    return this.playing.length - this.pendingRemovals + this.waiting.size;
  }

  get cacheBytes(): number {
    return this.cache.size;
  }

  get cacheChunks(): number {
    return this.cache.count;
  }

  /** The container the cache follows (`webm`, `mpegts`), if it recognised one. */
  get cacheFormat(): string | undefined {
    return this.cache.format;
  }

  /** The longest send queue among playing receivers, in bytes (for stats and tests). */
  maxQueuedBytes(): number {
    let max = 0;
    for (const r of this.playing) if (!r.removed) max = Math.max(max, r.sink.bufferedAmount);
    return max;
  }

  /** True when nothing holds the channel any more and it can be forgotten. */
  get idle(): boolean {
    return !this.publishing && !this.reserved && this.playing.length === 0 && this.waiting.size === 0;
  }

  /** Holds the publisher slot while the publish is authorized; false when taken. */
  reserve(): boolean {
    if (this.publishing || this.reserved) return false;
    this.reserved = true;
    return true;
  }

  unreserve(): void {
    this.reserved = false;
  }

  /** Starts publishing under a reservation; waiting receivers start now (or are refused). */
  startPublishing(key: string, streamId: string, control: PublisherControl): void {
    this.reserved = false;
    this.publishing = { key, streamId, control };
    this.cacheOff = false;
    for (const r of this.waiting) {
      this.waiting.delete(r);
      this.start(r);
    }
  }

  /** The publisher left: playing receivers end (once the backlog is out), the cache goes. */
  endPublishing(): void {
    if (!this.publishing) return;
    if (this.pumping) {
      this.endPending = true;
      return;
    }
    this.finishPublishing();
  }

  private finishPublishing(): void {
    this.publishing = undefined;
    this.publisherPaused = false;
    this.cache.clear();
    const playing = this.playing;
    this.playing = [];
    this.pendingRemovals = 0;
    for (const r of playing) {
      if (r.removed) continue;
      r.removed = true;
      r.sink.end('publisher-ended');
    }
  }

  kill(streamId: string | undefined, reason: string): boolean {
    if (!this.publishing || this.publishing.control.relayed) return false;
    if (streamId && streamId !== '*' && streamId !== this.publishing.streamId) return false;
    this.publishing.control.kill(reason);
    return true;
  }

  /**
   * The hot path: one chunk from the publisher. Small channels get it at once. Where the
   * receivers outnumber one slice, or chunks are already waiting, it joins the backlog,
   * which goes out in slices for up to FANOUT_TURN_MS per turn of the event loop: one
   * socket read can hold a hundred chunks, and sending them all to 2,000 receivers at
   * once held the loop for seconds, so new connections' handshakes and every timer waited.
   */
  publish(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.chunksIn++;
    if (this.tap !== undefined) this.tap(chunk);
    if (!this.pumping && this.playing.length <= FANOUT_SLICE_SENDS) {
      if (this.pendingRemovals > 0) this.compact();
      if (!this.cacheOff) this.cache.push(chunk);
      const playing = this.playing;
      for (let i = 0; i < playing.length; i++) this.deliver(playing[i]!, chunk);
      if (this.pendingRemovals > 0) this.compact();
      return;
    }
    this.backlog.push(chunk);
    this.backlogBytes += chunk.length;
    if (!this.pumping) {
      this.pumping = true;
      this.pump();
    }
    if (this.backlogBytes > BACKLOG_PAUSE_BYTES && !this.publisherPaused && this.publishing) {
      this.publisherPaused = true;
      this.publishing.control.pause?.();
    }
  }

  /**
   * One slice of the backlog; the rest waits for the next turn (setImmediate: after I/O).
   * The chunks waiting when a sweep begins are its batch: each receiver gets the whole
   * batch in a row (its socket writes them together, as it did when one read's chunks
   * all went out at once), receiver after receiver, so a slice is fewer receivers when
   * the batch is longer.
   */
  private pump(): void {
    if (this.backlogHead < this.backlog.length) this.pumpedThisTurn = true;
    const turnStart = performance.now();
    while (this.backlogHead < this.backlog.length) {
      this.slice();
      if (performance.now() - turnStart >= FANOUT_TURN_MS) break;
    }
    if (this.publisherPaused && this.backlogBytes <= BACKLOG_PAUSE_BYTES / 2) {
      this.publisherPaused = false;
      this.publishing?.control.resume?.();
    }
    // The next turn goes on, or (backlog empty) ends the pumping: until then, chunks from
    // the same socket read wait, so the budget holds for the whole read.
    if (this.backlogHead < this.backlog.length || this.pumpedThisTurn) {
      this.pumpedThisTurn = false;
      setImmediate(this.pumpLater);
      return;
    }
    this.backlog = [];
    this.backlogHead = 0;
    this.batchEnd = 0;
    this.pumping = false;
    if (this.endPending) {
      this.endPending = false;
      this.finishPublishing();
      // Nobody else may look at the channel again (its sockets may all be gone): forget it now.
      if (this.idle) this.onIdle?.(this);
    }
  }

  private slice(): void {
    let budget = FANOUT_SLICE_SENDS;
    while (budget > 0 && this.backlogHead < this.backlog.length) {
      if (this.cursor === 0) this.beginBatch();
      const batch = this.batchEnd - this.backlogHead;
      const to = Math.min(this.fanEnd, this.cursor + Math.ceil(budget / batch));
      const playing = this.playing;
      for (let i = this.cursor; i < to; i++) {
        const r = playing[i]!;
        for (let k = this.backlogHead; k < this.batchEnd; k++) this.deliver(r, this.backlog[k]!);
      }
      budget -= Math.max(1, (to - this.cursor) * batch);
      this.cursor = to;
      if (to < this.fanEnd) break;
      // Every receiver has the batch.
      this.cursor = 0;
      for (let k = this.backlogHead; k < this.batchEnd; k++) {
        this.backlogBytes -= this.backlog[k]!.length;
        this.backlog[k] = EMPTY;
      }
      this.backlogHead = this.batchEnd;
      if (this.pendingRemovals > 0) this.compact();
    }
  }

  private readonly pumpLater = (): void => {
    if (this.pumping) this.pump();
  };

  /** The waiting chunks start going out: they enter the cache, and receivers that join from now on get them from there. */
  private beginBatch(): void {
    if (this.pendingRemovals > 0) this.compact();
    this.batchEnd = this.backlog.length;
    if (!this.cacheOff)
      for (let k = this.backlogHead; k < this.batchEnd; k++) this.cache.push(this.backlog[k]!);
    this.fanEnd = this.playing.length;
  }

  private deliver(r: StreamReceiver, chunk: Buffer): void {
    if (r.removed) return;
    const limit = this.policy.receiverQueueBytes;
    const queued = r.sink.bufferedAmount;
    if (r.allowance > 0 && queued <= limit) r.allowance = 0;
    if (r.skipping) {
      if (queued > limit / 2) {
        r.dropped++;
        this.dropped++;
        return;
      }
      r.skipping = false;
    }
    if (queued > limit + r.allowance) {
      r.dropped++;
      this.dropped++;
      if (this.policy.slowReceiver === 'close') {
        this.detach(r, 'too-slow');
      } else {
        r.skipping = true;
      }
      return;
    }
    r.sink.send(chunk);
    this.bytesOut += chunk.length;
    if (r.mode === 'probe') this.detach(r, 'probe-done');
  }

  /**
   * What a receiver joining now gets before the next chunk to arrive: the cache, then the
   * chunks already in but not yet cached (waiting in the backlog). The cluster relay
   * sends this to a node that starts following the channel, so that node's own cache
   * begins where a local joiner's would.
   */
  replay(fn: (chunk: Buffer) => void): void {
    if (!this.cacheOff) this.cache.forEach(fn);
    for (let k = Math.max(this.batchEnd, this.backlogHead); k < this.backlog.length; k++)
      fn(this.backlog[k]!);
  }

  /** A receiver arrives: it starts now if the channel is live, else it waits. */
  addReceiver(sink: StreamSink, key: string, mode: ReceiveMode): StreamReceiver {
    const r = new StreamReceiver(sink, key, mode);
    if (this.publishing) this.start(r);
    else this.waiting.add(r);
    return r;
  }

  removeReceiver(r: StreamReceiver): void {
    if (this.waiting.delete(r)) return;
    if (r.removed) return;
    r.removed = true;
    this.pendingRemovals++;
    // Not while a batch is part-way through the list: the cursor indexes it.
    if (this.cursor === 0) this.compact();
  }

  private start(r: StreamReceiver): void {
    const pub = this.publishing!;
    if (!sameKey(r.key, pub.key)) {
      r.removed = true;
      r.sink.end('invalid-key');
      return;
    }
    if (r.mode === 'probe') {
      const first = this.cacheOff ? undefined : this.cache.first();
      if (first) {
        r.sink.send(first);
        r.removed = true;
        r.sink.end('probe-done');
        return;
      }
      this.playing.push(r);
      return;
    }
    if (!this.cacheOff) {
      this.cache.forEach((chunk) => r.sink.send(chunk));
      r.allowance = this.cache.size;
      if (r.mode === 'receive-clear-cache') {
        this.cache.clear();
        this.cacheOff = true;
      }
    }
    this.playing.push(r);
  }

  private detach(r: StreamReceiver, why: SinkEnd): void {
    r.removed = true;
    this.pendingRemovals++;
    r.sink.end(why);
  }

  private compact(): void {
    this.playing = this.playing.filter((r) => !r.removed);
    this.pendingRemovals = 0;
  }
}

const EMPTY = Buffer.alloc(0);
