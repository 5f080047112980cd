import { timingSafeEqual } from 'node:crypto';
import { GopCache } from './gop-cache.js';
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

  bytesIn = 0;
  chunksIn = 0;
  bytesOut = 0;
  dropped = 0;

  constructor(
    readonly id: string,
    cacheBytes: number,
    private readonly policy: FanOutPolicy,
  ) {
    this.cache = new GopCache(cacheBytes);
  }

  get isPublishing(): boolean {
    return this.publishing !== undefined;
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

  /** The publisher left: playing receivers end, the cache goes. */
  endPublishing(): void {
    if (!this.publishing) return;
    this.publishing = undefined;
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
    if (!this.publishing) return false;
    if (streamId && streamId !== '*' && streamId !== this.publishing.streamId) return false;
    this.publishing.control.kill(reason);
    return true;
  }

  /** The hot path: one chunk from the publisher. */
  publish(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.chunksIn++;
    if (!this.cacheOff) this.cache.push(chunk);
    const limit = this.policy.receiverQueueBytes;
    const playing = this.playing;
    for (let i = 0; i < playing.length; i++) {
      const r = playing[i]!;
      if (r.removed) continue;
      const queued = r.sink.bufferedAmount;
      if (r.allowance > 0 && queued <= limit) r.allowance = 0;
      if (r.skipping) {
        if (queued > limit / 2) {
          r.dropped++;
          this.dropped++;
          continue;
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
        continue;
      }
      r.sink.send(chunk);
      this.bytesOut += chunk.length;
      if (r.mode === 'probe') this.detach(r, 'probe-done');
    }
    if (this.pendingRemovals > 0) this.compact();
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
    this.compact();
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
