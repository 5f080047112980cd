import type { Logger } from 'pino';
import type { WebSocket, RawData } from 'ws';
import type { UserId } from '../../core/ids.js';
import type { Presence, PresenceHandle } from '../../core/presence.js';
import type { HeartbeatScheduler, Watch } from '../../lib/heartbeat-scheduler.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import type { Config } from '../../config/schema.js';
import { CloseCode, TARGET_NOT_FOUND, forwardedFrame, noticeFrame, parseInbound } from './signal-wire.js';
import { asUserId } from '../../core/ids.js';

/** Past this many unsent bytes the target is not reading: it is closed, not buffered for. */
const SEND_QUEUE_LIMIT_BYTES = 1 << 20;

/**
 * One user's `/v1/connect` socket: parses and rate-limits what the user sends, forwards
 * it through Presence, and writes what others send to the user. All writes to the socket
 * go through `ws`, which serialises them.
 */
export class SignalConnection {
  private readonly handle: PresenceHandle;
  /** Pinged every `heartbeatSeconds`; a ping unanswered by the next one terminates it. */
  private readonly liveness: Watch;
  private readonly bucket: TokenBucket;
  /**
   * Drops a client may cause before it is closed: a burst of `rateLimitBurst`, refilled
   * at as many a second. A client that keeps sending while refused is flooding.
   */
  private readonly drops: TokenBucket;

  constructor(
    private readonly socket: WebSocket,
    private readonly user: UserId,
    private readonly presence: Presence,
    private readonly config: Config['signal'],
    private readonly log: Logger,
    heartbeats: HeartbeatScheduler,
  ) {
    this.liveness = heartbeats.watch(
      { beat: () => socket.ping(), expire: () => this.missedHeartbeat() },
      { beatMs: config.heartbeatSeconds * 1000, answerRequired: true },
    );
    this.bucket = new TokenBucket(config.rateLimitPerSecond, config.rateLimitBurst);
    this.drops = new TokenBucket(config.rateLimitBurst, config.rateLimitBurst);
    this.handle = presence.attach(user, {
      deliver: (data) => this.deliver(data),
      replaced: () => this.close(CloseCode.replaced),
      kicked: () => this.close(CloseCode.kicked),
    });
    this.log.info('signal connected');
    socket.on('message', (data, isBinary) => {
      // A throw here would escape ws's emitter as an uncaught exception: one client's
      // frame must never reach the process. Refuse the frame, keep the connection.
      try {
        this.onMessage(data, isBinary);
      } catch (err) {
        this.log.warn({ err }, 'signal message could not be handled');
        this.send(noticeFrame('INVALID_MESSAGE', 'message could not be handled'));
      }
    });
    socket.on('pong', () => this.liveness.heard());
    socket.once('close', (code) => {
      this.liveness.stop();
      this.handle.detach();
      log.info({ code }, 'signal connection closed');
    });
  }

  private missedHeartbeat(): void {
    this.log.info('signal connection missed its heartbeat');
    this.handle.detach();
    this.socket.terminate();
  }

  close(how: { code: number; reason: string }): void {
    this.handle.detach();
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(how.code, how.reason);
    }
  }

  private deliver(data: Uint8Array): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    if (this.socket.bufferedAmount > SEND_QUEUE_LIMIT_BYTES) {
      this.log.warn({ buffered: this.socket.bufferedAmount }, 'signal client not reading; closing it');
      this.close(CloseCode.sendQueueFull);
      return false;
    }
    this.socket.send(data, { binary: false });
    return true;
  }

  private send(text: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(text);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.liveness.heard();
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (size > this.config.maxFrameBytes) {
      this.log.warn({ size, limit: this.config.maxFrameBytes }, 'signal message too big');
      this.close(CloseCode.tooBig);
      return;
    }
    if (!this.bucket.take()) {
      this.onRateLimited();
      return;
    }
    if (isBinary) {
      this.send(noticeFrame('INVALID_MESSAGE', 'binary frames are not accepted; send JSON text'));
      return;
    }
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data as ArrayBuffer).toString('utf8');
    const message = parseInbound(text);
    if (typeof message === 'string') {
      this.log.debug({ reason: message }, 'invalid signal message');
      this.send(noticeFrame('INVALID_MESSAGE', message));
      return;
    }
    const frame = forwardedFrame(this.user, message);
    this.presence.send(asUserId(message.target), frame).then(
      (delivered) => {
        if (!delivered) this.send(TARGET_NOT_FOUND);
        else this.log.debug({ target: message.target, type: message.type }, 'signal message forwarded');
      },
      (err: unknown) => this.log.error({ err }, 'signal forward failed'),
    );
  }

  private onRateLimited(): void {
    if (!this.drops.take()) {
      this.log.warn('signal client flooding; closing it');
      this.close(CloseCode.rateLimited);
      return;
    }
    this.send(noticeFrame('RATE_LIMITED', `at most ${this.config.rateLimitPerSecond} messages per second`));
  }
}
