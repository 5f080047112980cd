/**
 * A browser client of the Signal surface: register a name, hold the `/v1/connect`
 * socket, send `{target,type,payload}` and receive `{originator,target,type,payload}`.
 */
export interface SignalMessage {
  originator: string;
  target: string;
  type: string;
  payload: unknown;
}

export type RegisterResult = 'SUCCESS' | 'TAKEN' | 'INVALID';

export class SignalClient extends EventTarget {
  private socket: WebSocket | undefined;

  constructor(private readonly base = '') {
    super();
  }

  async register(username: string): Promise<{ status: RegisterResult; message: string }> {
    const res = await fetch(`${this.base}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username }),
      credentials: 'same-origin',
    });
    return (await res.json()) as { status: RegisterResult; message: string };
  }

  /** True when the browser holds a valid session cookie. */
  async hasSession(): Promise<boolean> {
    return (await this.session()) === 'valid';
  }

  /**
   * What the server says of this browser's session: valid, unknown (401/404: the name
   * is gone), or unavailable (it answered 5xx: not back yet). A network failure throws.
   */
  async session(): Promise<'valid' | 'unknown' | 'unavailable'> {
    const res = await fetch(`${this.base}/v1/user`, { credentials: 'same-origin', cache: 'no-store' });
    if (res.ok) return 'valid';
    return res.status === 401 || res.status === 404 ? 'unknown' : 'unavailable';
  }

  connect(): Promise<void> {
    const url = new URL(`${this.base}/v1/connect`, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    this.socket = socket;
    return new Promise((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('close', (ev) => {
        this.dispatchEvent(new CustomEvent('close', { detail: { code: ev.code, reason: ev.reason } }));
        reject(new Error(`closed ${ev.code} ${ev.reason}`));
      });
      socket.addEventListener('message', (ev) => {
        let msg: SignalMessage;
        try {
          msg = JSON.parse(String(ev.data)) as SignalMessage;
        } catch {
          return;
        }
        this.dispatchEvent(new CustomEvent('message', { detail: msg }));
      });
    });
  }

  send(target: string, type: string, payload: unknown = null): void {
    if (this.socket?.readyState !== WebSocket.OPEN) throw new Error('not connected');
    this.socket.send(JSON.stringify({ target, type, payload }));
  }

  close(): void {
    this.socket?.close(1000, 'bye');
  }
}
