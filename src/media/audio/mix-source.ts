import type { MixListener, MixSubscription } from './audio-mixer.js';
import { MixFeed, type FeedFormat, type FeedReader, type FeedSink } from './mix-feed.js';

/**
 * What a listening stream reads a mix from: this node's `AudioMixer`, or a relay of a
 * mixer on another node. `listen` gives one listener its frames (mix-minus: everyone but
 * `speakerId`); `read`, where the source has it, puts the stream on the feed it shares
 * with every other stream of the same mix (one encode, one page per flush for all).
 */
export interface MixSource {
  listen(listener: MixListener, speakerId?: string): MixSubscription;
  read?(me: string | undefined, format: FeedFormat, sink: FeedSink, flushTicks: number): FeedReader;
}

/**
 * Starts a listening stream on `source`: on its shared feeds when it has them, else on
 * a feed of the stream's own, fed through `listen` (each stream then costs its own pages).
 */
export function readMix(
  source: MixSource,
  me: string | undefined,
  format: FeedFormat,
  sink: FeedSink,
  flushTicks: number,
): FeedReader {
  if (source.read) return source.read(me, format, sink, flushTicks);
  const relay: MixListener & { feed?: MixFeed } = { onFrame: (f) => relay.feed?.onFrame(f) };
  const sub = source.listen(relay, me);
  const backlog = sub.backlog();
  const feed = new MixFeed({
    preSkip: sub.preSkip,
    flushTicks,
    backlogPackets: backlog.length,
    backlog,
    onEmpty: () => sub.close(),
  });
  relay.feed = feed;
  return feed.join(format, sink);
}
