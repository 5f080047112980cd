import { SignJWT } from 'jose';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { controlMessage, parseControl, serializeControl, type ControlMessage } from './control-message.js';

export interface CoordinatorOptions {
  baseUrl: string;
  secret: string | undefined;
  externalIp: string | undefined;
  externalPort: number | undefined;
  externalSsl: boolean;
  publishTimeoutMs: number;
  reconnectMaxMs: number;
  heartbeatMs?: number;
  readTimeoutMs?: number;
}

export type PublishDecision =
  { accepted: true; streamId: string } | { accepted: false; reason: 'denied' | 'timeout' | 'unavailable' };

export interface CoordinatorHandlers {
  /** STREAM-KILL: streamId is '*' or '' for any stream on the channel. */
  kill(channel: string, streamId: string): void;
  /** After every successful (re)connect: the coordinator assumes live publishers died. */
  connected(): void;
}

interface Pending {
  channel: string;
  resolve: (d: PublishDecision) => void;
  timer: NodeJS.Timeout;
}

/**
 * The link to the stream coordinator, as the original ws-stream-server speaks it: dials
 * `{CONTROL_BASE_URL}/ws/control/wss` with an HS256 token, asks it to authorize each
 * publish, reports ends, obeys kills, heartbeats both ways, reconnects with backoff.
 */
export class CoordinatorClient {
  private socket: WebSocket | undefined;
  private isOpen = false;
  private nextRequestId = 0;
  private readonly pending = new Map<string, Pending>();
  /** Requests that timed out: a late accept for one is ended at once. */
  private readonly expired = new Map<string, string>();
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  private stopped = false;
  private readonly heartbeatMs: number;
  private readonly readTimeoutMs: number;

  constructor(
    private readonly opts: CoordinatorOptions,
    private readonly handlers: CoordinatorHandlers,
    private readonly log: Logger,
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 20_000;
    this.readTimeoutMs = opts.readTimeoutMs ?? 60_000;
  }

  get connected(): boolean {
    return this.isOpen;
  }

  get url(): string {
    return new URL('/ws/control/wss', this.opts.baseUrl).toString();
  }

  start(): void {
    void this.dial();
  }

  requestPublish(channel: string, key: string, userIp: string): Promise<PublishDecision> {
    if (!this.isOpen) return Promise.resolve({ accepted: false, reason: 'unavailable' });
    const id = String(this.nextRequestId++);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.expired.set(id, channel);
        if (this.expired.size > 1000) this.expired.delete(this.expired.keys().next().value!);
        this.log.warn({ channel, requestId: id }, 'coordinator did not answer a publish request in time');
        resolve({ accepted: false, reason: 'timeout' });
      }, this.opts.publishTimeoutMs);
      this.pending.set(id, { channel, resolve, timer });
      this.send(
        controlMessage('PUBLISH-REQUEST', {
          'Request-ID': id,
          'Stream-Channel': channel,
          'Stream-Key': key,
          'User-IP': userIp,
        }),
      );
    });
  }

  publishEnd(channel: string, streamId: string): void {
    this.send(controlMessage('PUBLISH-END', { 'Stream-Channel': channel, 'Stream-ID': streamId }));
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    this.failPending();
    const s = this.socket;
    if (s && s.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.close(1001, 'server shutting down');
        setTimeout(() => {
          s.terminate();
          resolve();
        }, 1000).unref();
      });
    }
  }

  private async dial(): Promise<void> {
    if (this.stopped) return;
    const headers: Record<string, string> = {};
    if (this.opts.secret) {
      headers['x-control-auth-token'] = await new SignJWT({ sub: 'wss-control' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .sign(new TextEncoder().encode(this.opts.secret));
    }
    if (this.opts.externalIp) headers['x-external-ip'] = this.opts.externalIp;
    if (this.opts.externalPort) headers['x-custom-port'] = String(this.opts.externalPort);
    if (this.opts.externalSsl) headers['x-ssl-use'] = 'true';
    if (this.stopped) return;

    const socket = new WebSocket(this.url, { headers, handshakeTimeout: 10_000 });
    this.socket = socket;
    socket.on('open', () => {
      this.isOpen = true;
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.log.info({ url: this.url }, 'connected to the stream coordinator');
      this.heartbeatTimer = setInterval(
        () => this.tick(),
        Math.min(this.heartbeatMs, this.readTimeoutMs / 2),
      );
      try {
        this.handlers.connected();
      } catch (err) {
        this.log.error({ err }, 'coordinator connected handler threw');
      }
    });
    socket.on('message', (data, isBinary) => {
      this.lastHeard = Date.now();
      if (isBinary) return;
      const msg = parseControl((data as Buffer).toString('utf8'));
      if (msg) this.onMessage(msg);
    });
    socket.on('unexpected-response', (_req, res) => {
      this.log.error(
        { status: res.statusCode, url: this.url },
        'the stream coordinator refused the connection',
      );
      socket.terminate();
    });
    socket.on('error', (err) =>
      this.log.warn({ err: err.message, url: this.url }, 'stream coordinator link error'),
    );
    socket.on('close', () => {
      const wasOpen = this.isOpen;
      this.isOpen = false;
      clearInterval(this.heartbeatTimer);
      this.failPending();
      if (this.stopped) return;
      // A dropped link is retried at once; failed dials back off up to the maximum.
      const delay = wasOpen ? 0 : Math.min(this.opts.reconnectMaxMs, 500 * 2 ** this.attempt++);
      if (wasOpen) this.log.warn('lost the stream coordinator; reconnecting');
      this.reconnectTimer = setTimeout(() => void this.dial(), delay);
    });
  }

  private tick(): void {
    if (Date.now() - this.lastHeard > this.readTimeoutMs) {
      this.log.warn('stream coordinator silent past the read timeout; reconnecting');
      this.socket?.terminate();
      return;
    }
    this.send(controlMessage('HEARTBEAT'));
  }

  private onMessage(msg: ControlMessage): void {
    switch (msg.method) {
      case 'HEARTBEAT':
        return;
      case 'PUBLISH-ACCEPT':
      case 'PUBLISH-DENY': {
        const id = msg.params.get('request-id') ?? '';
        const streamId = msg.params.get('stream-id') ?? '';
        const p = this.pending.get(id);
        if (!p) {
          const channel = this.expired.get(id);
          if (channel !== undefined && msg.method === 'PUBLISH-ACCEPT') {
            // Too late: the publisher was refused, so tell the coordinator it is not live.
            this.expired.delete(id);
            this.publishEnd(channel, streamId);
          }
          return;
        }
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(
          msg.method === 'PUBLISH-ACCEPT'
            ? { accepted: true, streamId }
            : { accepted: false, reason: 'denied' },
        );
        return;
      }
      case 'STREAM-KILL':
        this.handlers.kill(msg.params.get('stream-channel') ?? '', msg.params.get('stream-id') ?? '');
        return;
      case 'ERROR':
        this.log.warn(
          { code: msg.params.get('error-code'), message: msg.params.get('error-message') },
          'stream coordinator reported an error',
        );
        return;
      default:
        this.log.debug({ method: msg.method }, 'unknown coordinator message');
    }
  }

  private send(msg: ControlMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(serializeControl(msg));
  }

  private failPending(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ accepted: false, reason: 'unavailable' });
      this.pending.delete(id);
    }
  }
}
