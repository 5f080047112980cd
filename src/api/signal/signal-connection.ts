import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { WebSocket, RawData } from 'ws';
import type { UserId } from '../../core/ids.js';
import type { Presence, PresenceEndpoint, PresenceHandle } from '../../core/presence.js';
import type { HeartbeatScheduler, HeartbeatTarget, Watch } from '../../lib/heartbeat-scheduler.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import type { Config } from '../../config/schema.js';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import {
  CloseCode,
  TARGET_NOT_FOUND,
  forwardedBytes,
  forwardedFrame,
  noticeFrame,
  parseInbound,
} from './signal-wire.js';
import { frameTarget } from './frame-target.js';
import { asUserId } from '../../core/ids.js';
import { textFrames } from './text-frames.js';
import type { TurnFlush } from './turn-flush.js';

/** Past this many unsent bytes the target is not reading: it is closed, not buffered for. */
const SEND_QUEUE_LIMIT_BYTES = 1 << 20;

/** ws.send's options for a text frame: one object, not one a message. */
const TEXT = { binary: false } as const;

/** See SignalConnection.undelivered. */
function notFoundTo(connection: SignalConnection): () => void {
  return () => connection.notFound();
}

/** What the connections of one surface share: one object, not a copy per connection. */
export interface SignalConnectionContext {
  presence: Presence;
  config: Config['signal'];
  heartbeats: HeartbeatScheduler;
  /** The surface's logger; a connection adds its user and id to the lines it writes. */
  log: Logger;
  /** Lines any client can cause (protocol errors), throttled surface-wide. */
  clientErrors: ThrottledLog;
  /** A connection has closed (after Presence let go of it). */
  closed(user: UserId, conn: string): void;
  /** Writes the connections that queued messages this turn, at its end. */
  turn: TurnFlush;
}

/**
 * One user's `/v1/connect` socket: parses and rate-limits what the user sends, forwards
 * it through Presence, and writes what others send to the user: queued during a turn,
 * written at its end as one Buffer of frames, one socket write for all (see flush).
 *
 * Ten thousand of these are held idle at once, so a connection keeps little: no child
 * logger (the fields are added to the few lines it writes), no closures for Presence and
 * the heartbeat (it is their endpoint and target itself), and a flood bucket only once
 * the client has been refused.
 */
export class SignalConnection implements PresenceEndpoint, HeartbeatTarget {
  private readonly handle: PresenceHandle;
  /** Pinged every `heartbeatSeconds`; a ping unanswered by the next one terminates it. */
  private readonly liveness: Watch;
  private readonly bucket: TokenBucket;
  /**
   * Drops a client may cause before it is closed: a burst of `rateLimitBurst`, refilled
   * at as many a second. A client that keeps sending while refused is flooding. Made at
   * the first refusal: most connections never meet the limit.
   */
  private drops: TokenBucket | undefined;
  /**
   * Text messages for the client this turn, written as one Buffer of frames when the turn
   * ends (see flush); none while idle.
   */
  private outbox: (string | Uint8Array)[] | undefined;
  /**
   * Told when a forwarded message found no taker: the sender hears TARGET_NOT_FOUND. Made
   * by a function, not as an arrow field: the build keeps function names (esbuild's
   * keepNames), and a named closure made per object carries its own property table
   * (about 300 bytes a connection, heap snapshot, #17.1).
   */
  private readonly undelivered = notFoundTo(this);

  constructor(
    private readonly socket: WebSocket,
    /** The TCP socket under `socket`: a turn's messages are written to it at once. */
    private readonly tcp: Socket,
    private readonly user: UserId,
    /** The request's id, the `conn` field of this connection's log lines. */
    private readonly conn: string,
    private readonly ctx: SignalConnectionContext,
  ) {
    const { config } = ctx;
    this.liveness = ctx.heartbeats.watch(this, {
      beatMs: config.heartbeatSeconds * 1000,
      answerRequired: true,
    });
    this.bucket = new TokenBucket(config.rateLimitPerSecond, config.rateLimitBurst);
    this.handle = ctx.presence.attach(user, this);
    ctx.log.info({ user, conn }, 'signal connected');
    socket.on('message', (data, isBinary) => {
      // A throw here would escape ws's emitter as an uncaught exception: one client's
      // frame must never reach the process. Refuse the frame, keep the connection.
      try {
        this.onMessage(data, isBinary);
      } catch (err) {
        this.ctx.log.warn({ err, user, conn }, 'signal message could not be handled');
        this.send(noticeFrame('INVALID_MESSAGE', 'message could not be handled'));
      }
    });
    socket.on('pong', () => this.liveness.heard());
    // `on`, not `once`: a socket closes once, and once's wrapper is per connection too.
    socket.on('close', (code) => {
      this.outbox = undefined;
      this.liveness.stop();
      this.handle.detach();
      ctx.log.info({ user, conn, code }, 'signal connection closed');
      ctx.closed(user, conn);
    });
  }

  /**
   * The socket's 'error' events. ws reports a client's protocol error there (invalid
   * UTF-8, a malformed or oversize frame) and has already sent the close (1002, 1007,
   * 1009); anything else is this server's fault: logged with its stack, socket ended.
   */
  onSocketError(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
      this.ctx.clientErrors.warn(
        { user: this.user, conn: this.conn, code, reason: err.message },
        'websocket protocol error',
      );
      return;
    }
    this.ctx.log.error({ err, user: this.user, conn: this.conn }, 'signal socket failed');
    this.socket.terminate();
  }

  /** HeartbeatTarget: the wheel says a ping is due. */
  beat(): void {
    this.socket.ping();
  }

  /** HeartbeatTarget: the previous ping went unanswered. */
  expire(): void {
    this.ctx.log.info({ user: this.user, conn: this.conn }, 'signal connection missed its heartbeat');
    this.handle.detach();
    this.socket.terminate();
  }

  /** PresenceEndpoint: this user connected again, here or on another node. */
  replaced(): void {
    this.close(CloseCode.replaced);
  }

  /** PresenceEndpoint: an admin kicked every active user. */
  kicked(): void {
    this.close(CloseCode.kicked);
  }

  close(how: { code: number; reason: string }): void {
    this.handle.detach();
    this.flush(); // what this turn delivered goes before the close frame
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(how.code, how.reason);
    }
  }

  /** PresenceEndpoint: a message for this user, from this node (text) or off the bus (bytes). */
  deliver(data: Uint8Array | string): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    if (this.socket.bufferedAmount > SEND_QUEUE_LIMIT_BYTES) {
      this.ctx.log.warn(
        { user: this.user, conn: this.conn, buffered: this.socket.bufferedAmount },
        'signal client not reading; closing it',
      );
      this.close(CloseCode.sendQueueFull);
      return false;
    }
    // Text either way: a string is sent as a text frame, bytes (off the bus) too.
    this.queue(data);
    return true;
  }

  /**
   * @internal The end of a turn in which messages were queued: writes them to the TCP
   * socket as one Buffer of text frames built here (textFrames), one write. Through ws,
   * each message cost an options object, ws's own options and frame list, a header
   * Buffer, two corked stream writes and their entries in writev's list: on loopback TCP
   * (bench/signal/write-path.ts, 8 messages a turn) 1.6-1.8 us and 1,510 bytes of young
   * generation per message against 1.0-1.2 us and 670-760 bytes this way (BENCHMARKS.md,
   * #17.1 session 12). ws keeps no state about data frames that these could upset: it
   * writes only control frames for this connection (pings, the close), each whole, never
   * in the middle of this write, and the surface has no per-message compression; were an
   * extension negotiated, ws frames them as before. (Session 9 measured this way slower
   * in one run of each on a loaded box, 66 k against 104 k messages per CPU-second; the
   * interleaved runs of session 12 are in BENCHMARKS.md.)
   */
  flush(): void {
    const messages = this.outbox;
    if (!messages) return;
    this.outbox = undefined;
    if (this.socket.readyState !== this.socket.OPEN || this.tcp.destroyed) return;
    if (this.socket.extensions === '') {
      this.tcp.write(textFrames(messages));
      return;
    }
    this.tcp.cork();
    for (const m of messages) this.socket.send(m, TEXT);
    this.tcp.uncork();
  }

  /**
   * Several messages for one user often arrive in one read (a burst of ICE candidates,
   * or any load): held until the turn ends, they leave in one write, not one each.
   * Notices share the queue, so the client reads everything in the order it was sent.
   */
  private queue(data: string | Uint8Array): void {
    if (this.outbox) this.outbox.push(data);
    else {
      this.outbox = [data];
      this.ctx.turn.add(this);
    }
  }

  /** @internal A message this connection forwarded found no taker. */
  notFound(): void {
    this.send(TARGET_NOT_FOUND);
  }

  private send(text: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.queue(text);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.liveness.heard();
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (size > this.ctx.config.maxFrameBytes) {
      this.ctx.log.warn(
        { user: this.user, conn: this.conn, size, limit: this.ctx.config.maxFrameBytes },
        'signal message too big',
      );
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
    // ws hands a text frame over as one Buffer (its default binaryType). The frame every
    // client sends (exactly target, type, payload) is forwarded as its bytes, found valid
    // without decoding or parsing it (frameTarget); any other takes parseInbound's path,
    // whose verdicts and reasons stay the answers (#17.1 session 13).
    if (Buffer.isBuffer(data)) {
      const target = frameTarget(data);
      if (target !== undefined) {
        this.ctx.presence.forward(asUserId(target), forwardedBytes(this.user, data), this.undelivered);
        return;
      }
    }
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data).toString('utf8');
    const message = parseInbound(text);
    if (typeof message === 'string') {
      this.ctx.log.debug({ user: this.user, conn: this.conn, reason: message }, 'invalid signal message');
      this.send(noticeFrame('INVALID_MESSAGE', message));
      return;
    }
    this.ctx.presence.forward(
      asUserId(message.target),
      forwardedFrame(this.user, message, text),
      this.undelivered,
    );
  }

  private onRateLimited(): void {
    const { rateLimitBurst, rateLimitPerSecond } = this.ctx.config;
    this.drops ??= new TokenBucket(rateLimitBurst, rateLimitBurst);
    if (!this.drops.take()) {
      this.ctx.log.warn({ user: this.user, conn: this.conn }, 'signal client flooding; closing it');
      this.close(CloseCode.rateLimited);
      return;
    }
    this.send(noticeFrame('RATE_LIMITED', `at most ${rateLimitPerSecond} messages per second`));
  }
}
