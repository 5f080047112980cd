import type { MessageSink } from '../ports/sinks/message-sink.js';

/** One speaker's audio over one window of a conversation, as the engine publishes it. */
export interface Bite {
  conversation: string;
  user: string;
  client: string;
  /** Start of the window, Unix ms. */
  startMs: number;
  /** Audio in the bite, ms. */
  durationMs: number;
  /** The Opus packets as received, in order. */
  packets: readonly Uint8Array[];
}

export interface SinkMessage {
  subject: string;
  data: Uint8Array;
}

/**
 * How a surface writes a bite on the wire (subjects and bytes). The engine decides
 * whether and where bites go; the surface that promised consumers a format owns it.
 */
export interface BiteFormat {
  /** The bite itself (counted as published), and other messages made from it. */
  encode(bite: Bite): { bite: SinkMessage; also: readonly SinkMessage[] };
}

/**
 * Publishes bites through the sink port. Never waits: while the sink cannot send, it
 * drops and counts (bites are live media; a backlog replayed later would help nobody).
 */
export class BitePublisher {
  /** Bites the sink took (the extra messages made from them are not counted here). */
  published = 0;

  constructor(private readonly sink: MessageSink) {}

  /** Messages (bites and the rest) the sink dropped because it was not connected. */
  get dropped(): number {
    return this.sink.dropped;
  }

  publish(bite: Bite, format: BiteFormat): void {
    const { bite: message, also } = format.encode(bite);
    if (this.sink.publish(message.subject, message.data)) this.published++;
    for (const m of also) this.sink.publish(m.subject, m.data);
  }
}
