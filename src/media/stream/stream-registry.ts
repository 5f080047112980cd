import type { CacheMode } from './gop-cache.js';
import type { FanOutPolicy } from './stream-sink.js';
import { StreamChannel } from './stream-channel.js';

export interface StreamTotals {
  channels: number;
  publishers: number;
  receivers: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
}

/** All channels of the node; a channel exists while something holds it. */
export class StreamRegistry {
  private readonly channels = new Map<string, StreamChannel>();
  // Totals of channels already forgotten, so counters never go backwards.
  private retired = { bytesIn: 0, bytesOut: 0, dropped: 0 };

  constructor(
    private readonly cacheBytes: number,
    private readonly policy: FanOutPolicy,
    private readonly cacheMode: CacheMode = 'auto',
  ) {}

  channel(id: string): StreamChannel {
    let c = this.channels.get(id);
    if (!c) {
      c = new StreamChannel(id, this.cacheBytes, this.policy, this.cacheMode, this.releaseLater);
      this.channels.set(id, c);
    }
    return c;
  }

  find(id: string): StreamChannel | undefined {
    return this.channels.get(id);
  }

  private readonly releaseLater = (c: StreamChannel): void => this.release(c);

  /** Forgets the channel when nothing holds it any more. */
  release(c: StreamChannel): void {
    if (c.idle && this.channels.get(c.id) === c) {
      this.retired.bytesIn += c.bytesIn;
      this.retired.bytesOut += c.bytesOut;
      this.retired.dropped += c.dropped;
      this.channels.delete(c.id);
    }
  }

  /** Stops a channel's publisher: a specific stream id, or any with '*' / ''. */
  kill(channelId: string, streamId: string | undefined, reason: string): boolean {
    return this.channels.get(channelId)?.kill(streamId, reason) ?? false;
  }

  killAll(reason: string): number {
    let n = 0;
    for (const c of this.channels.values()) if (c.kill('*', reason)) n++;
    return n;
  }

  totals(): StreamTotals {
    const t: StreamTotals = { channels: this.channels.size, publishers: 0, receivers: 0, ...this.retired };
    for (const c of this.channels.values()) {
      if (c.isPublishing && !c.relayed) t.publishers++;
      t.receivers += c.receiverCount;
      t.bytesIn += c.bytesIn;
      t.bytesOut += c.bytesOut;
      t.dropped += c.dropped;
    }
    return t;
  }
}
