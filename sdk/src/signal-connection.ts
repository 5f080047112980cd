import { ChorusError } from './errors.js';
import type { ClientMessage, ServerMessage } from './protocol.js';

/** Where to connect and how: the room's resume parameters when resuming. */
export interface SignalTarget {
  /** The server: `https://host`, `wss://host`, or the full `.../chorus/v1/rtc` URL. */
  url: string;
  token: string;
  resume?: { token: string; lastSeq: number };
}

/** Requests that the server answers (a reply or an `error` with the same requestId). */
type Reply = Extract<ServerMessage, { requestId?: string }>;

const RTC_PATH = '/chorus/v1/rtc';

/** The WebSocket URL of the native signalling for `target`. */
export function signalUrl(target: SignalTarget): string {
  const u = new URL(target.url, typeof location === 'undefined' ? undefined : location.href);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (!u.pathname.endsWith(RTC_PATH)) u.pathname = u.pathname.replace(/\/$/, '') + RTC_PATH;
  u.searchParams.set('access_token', target.token);
  if (target.resume) {
    u.searchParams.set('resume', target.resume.token);
    u.searchParams.set('last_seq', String(target.resume.lastSeq));
  }
  return u.toString();
}

/**
 * One WebSocket session of the native signalling: JSON messages both ways, requests
 * matched to their replies by `requestId`, and a keep-alive ping. A socket that hears
 * nothing for `silenceMs` (a network that silently dropped it) is closed, so the room
 * notices and reconnects instead of waiting for TCP to give up.
 */
export class SignalConnection {
  /** Every server message, in order (messages that arrive before it is set wait for it). */
  #onMessage: ((msg: ServerMessage) => void) | undefined;
  #queued: ServerMessage[] = [];
  /** Called once when the socket closes, for whatever reason. */
  onClose: (code: number, reason: string) => void = () => undefined;
  readonly #pending = new Map<string, { resolve(m: Reply): void; reject(e: Error): void }>();
  #nextRequest = 1;
  #lastHeard = Date.now();
  #pinger: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  private constructor(
    private readonly ws: WebSocket,
    pingMs: number,
    private readonly silenceMs: number,
  ) {
    ws.addEventListener('message', (ev: MessageEvent) => this.#receive(ev.data));
    ws.addEventListener('close', (ev: CloseEvent) => this.#ended(ev.code, ev.reason));
    this.#pinger = setInterval(() => this.#keepAlive(), pingMs);
  }

  /**
   * Opens the socket and resolves with the session and the server's first message
   * (`join` or `resumed`). Rejects when the socket closes first (a refused token is an
   * HTTP 401/403 before the upgrade: browsers show it only as a failed connection).
   */
  static open(
    target: SignalTarget,
    opts: { timeoutMs: number; pingMs: number; silenceMs: number },
  ): Promise<{ connection: SignalConnection; first: ServerMessage }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(signalUrl(target));
      const conn = new SignalConnection(ws, opts.pingMs, opts.silenceMs);
      const timer = setTimeout(() => {
        conn.close(4000, 'connect timeout');
        reject(new ChorusError('timeout', `no answer from ${target.url} within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      let opened = false;
      ws.addEventListener('open', () => (opened = true));
      conn.onClose = (code, reason) => {
        clearTimeout(timer);
        // A refused token is an HTTP 401/403 before the upgrade, which a browser does not show.
        const origin = new URL(signalUrl(target)).host;
        reject(
          opened
            ? new ChorusError('closed', `the signalling socket closed before joining (${code} ${reason})`)
            : new ChorusError(
                'closed',
                `could not connect to ${origin}: the server is unreachable or refused the access token (bad, expired, or without roomJoin)`,
              ),
        );
      };
      conn.#onMessage = (first) => {
        clearTimeout(timer);
        conn.onClose = () => undefined;
        conn.#onMessage = undefined;
        resolve({ connection: conn, first });
      };
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Delivers later messages (and those queued meanwhile) to `handler`. */
  listen(handler: (msg: ServerMessage) => void): void {
    this.#onMessage = handler;
    const queued = this.#queued;
    this.#queued = [];
    for (const m of queued) handler(m);
  }

  /** Sends without waiting for a reply; false when the socket is not open. */
  send(msg: ClientMessage): boolean {
    if (this.#closed || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Sends `msg` with a fresh requestId and resolves with the reply; an `error` reply rejects. */
  request(msg: ClientMessage, timeoutMs = 15_000): Promise<Reply> {
    const requestId = `r${this.#nextRequest++}`;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new ChorusError('timeout', `no answer to '${msg.type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(requestId, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      if (!this.send({ ...msg, requestId })) {
        this.#pending
          .get(requestId)
          ?.reject(new ChorusError('closed', `not connected: '${msg.type}' not sent`));
        this.#pending.delete(requestId);
      }
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed) return;
    try {
      this.ws.close(code, reason);
    } catch {
      // Already closing; the close event follows either way.
    }
    // Do not wait for the server's close frame: a dead network would never send it.
    this.#ended(code, reason);
  }

  #receive(data: unknown): void {
    this.#lastHeard = Date.now();
    if (typeof data !== 'string') return;
    let msg: ServerMessage;
    try {
      msg = JSON.parse(data) as ServerMessage;
    } catch {
      return; // Not ours to crash on: the server never sends it.
    }
    if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') return;
    const requestId = 'requestId' in msg ? msg.requestId : undefined;
    const waiting = requestId === undefined ? undefined : this.#pending.get(requestId);
    if (waiting && requestId !== undefined) {
      this.#pending.delete(requestId);
      if (msg.type === 'error') waiting.reject(new ChorusError(msg.code, msg.message));
      else waiting.resolve(msg as Reply);
    }
    if (this.#onMessage) this.#onMessage(msg);
    else this.#queued.push(msg);
  }

  #keepAlive(): void {
    if (Date.now() - this.#lastHeard > this.silenceMs) {
      this.close(4000, 'no answer to pings');
      return;
    }
    this.send({ type: 'ping', timestamp: Date.now() });
  }

  #ended(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pinger);
    for (const p of this.#pending.values())
      p.reject(new ChorusError('closed', 'the signalling socket closed'));
    this.#pending.clear();
    this.onClose(code, reason);
  }
}
