import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { HeartbeatScheduler, Watch } from '../../lib/heartbeat-scheduler.js';
import type { StreamChannel, StreamReceiver } from '../../media/stream/stream-channel.js';
import type { ReceiveMode, SinkEnd, StreamSink } from '../../media/stream/stream-sink.js';
import { StreamClose, StreamText } from './stream-wire.js';

const BINARY = { binary: true } as const;
/** How long a receiver closed as too slow has to read its queue and the close frame. */
const TOO_SLOW_CLOSE_GRACE_MS = 10_000;

/** How often the text heartbeat goes out, and how long a silent connection is kept. */
export interface StreamLiveness {
  heartbeats: HeartbeatScheduler;
  heartbeatMs: number;
  idleMs: number;
}

/** Common to publishers and receivers: liveness for the heartbeat and idle timeout. */
export abstract class StreamSession {
  /** Anything the client sends (a chunk, text, a pong) counts as a sign of life. */
  protected readonly liveness: Watch;

  constructor(
    readonly socket: WebSocket,
    protected readonly log: Logger,
    { heartbeats, heartbeatMs, idleMs }: StreamLiveness,
  ) {
    this.liveness = heartbeats.watch(
      { beat: () => this.heartbeat(), expire: () => this.closeIdle() },
      { beatMs: heartbeatMs, idleMs },
    );
    socket.on('pong', () => this.liveness.heard());
    socket.once('close', () => this.liveness.stop());
  }

  private heartbeat(): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(StreamText.heartbeat);
  }

  private closeIdle(): void {
    this.log.info('stream connection idle past the timeout');
    this.socket.close(StreamClose.idle.code, StreamClose.idle.reason);
    setTimeout(() => this.socket.terminate(), 2000).unref();
  }
}

/** A publisher: its binary messages are the channel's chunks. */
export class PublisherSession extends StreamSession {
  constructor(
    socket: WebSocket,
    log: Logger,
    liveness: StreamLiveness,
    private readonly channel: StreamChannel,
    maxMessageBytes: number,
  ) {
    super(socket, log, liveness);
    // A person following the log wants to see a stream start and stop (#13.7).
    this.log.info('publishing');
    socket.once('close', (code) => this.log.info({ code }, 'publisher left'));
    socket.on('message', (data, isBinary) => {
      this.liveness.heard();
      if (!isBinary) return; // text only keeps the connection alive
      const chunk = data as Buffer;
      if (chunk.length > maxMessageBytes) {
        this.log.warn({ size: chunk.length }, 'stream chunk too big; closing the publisher');
        socket.close(StreamClose.tooBig.code, StreamClose.tooBig.reason);
        return;
      }
      this.channel.publish(chunk);
    });
  }

  kill(reason: string): void {
    this.log.info({ reason }, 'publisher killed');
    this.socket.close(StreamClose.killed.code, StreamClose.killed.reason);
  }

  /** The channel's fan-out backlog is full: stop reading so TCP pushes back on the publisher. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}

/** A receiver: the engine writes chunks to it through the StreamSink interface. */
export class ReceiverSession extends StreamSession implements StreamSink {
  readonly receiver: StreamReceiver;

  constructor(
    socket: WebSocket,
    log: Logger,
    liveness: StreamLiveness,
    channel: StreamChannel,
    key: string,
    mode: ReceiveMode,
  ) {
    super(socket, log, liveness);
    socket.on('message', (_data, isBinary) => {
      this.liveness.heard();
      if (isBinary) {
        this.log.warn('a receiver sent binary data; closing it');
        socket.close(StreamClose.receiverSentData.code, StreamClose.receiverSentData.reason);
      }
    });
    this.receiver = channel.addReceiver(this, key, mode);
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(chunk: Buffer): void {
    this.socket.send(chunk, BINARY);
  }

  end(reason: SinkEnd): void {
    const s = this.socket;
    switch (reason) {
      case 'invalid-key':
        this.log.warn('receiver key does not match the publisher');
        s.send(StreamText.invalidStreamingKey);
        s.close(StreamClose.invalidKey.code, StreamClose.invalidKey.reason);
        return;
      case 'publisher-ended':
        s.close(StreamClose.publisherEnded.code, StreamClose.publisherEnded.reason);
        return;
      case 'probe-done':
        s.close(StreamClose.probeDone.code, StreamClose.probeDone.reason);
        return;
      case 'too-slow':
        // A close frame the client can act on (1013: try again later), as documented. It
        // waits behind the full queue, so a receiver that still reads nothing is cut.
        this.log.warn({ buffered: s.bufferedAmount }, 'receiver too slow; closing it');
        s.close(StreamClose.tooSlow.code, StreamClose.tooSlow.reason);
        setTimeout(() => s.terminate(), TOO_SLOW_CLOSE_GRACE_MS).unref();
        return;
    }
  }
}
