// One round of Signal churn: register N names (the holder's cookie re-registers the same
// name in later rounds, so the store does not grow round after round), open N
// `/v1/connect` sockets, have each pair exchange a few messages, then drop: even sockets
// with a close frame, odd ones by destroying the TCP socket (no close frame, as a
// crashed client or a lost network does).
import WebSocket from 'ws';
import { Failures } from './failures.js';

export interface SignalRound {
  attempted: number;
  connected: number;
  /** Messages that should have reached a partner, and those that did within the deadline. */
  messagesExpected: number;
  messagesDelivered: number;
  closedGracefully: number;
  destroyed: number;
  failures: Failures;
}

/** Cookies by name, kept across rounds: the same users come back each round. */
export type SignalCookies = Map<string, string>;

const BATCH = 200;
const TIMEOUT_MS = 15_000;

async function register(base: string, name: string, cookies: SignalCookies): Promise<string> {
  const held = cookies.get(name);
  const res = await fetch(`${base}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(held ? { cookie: held } : {}) },
    body: JSON.stringify({ username: name }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`register: HTTP ${res.status}`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] || held;
  if (!cookie) throw new Error('register: no cookie');
  cookies.set(name, cookie);
  return cookie;
}

function open(wsBase: string, cookie: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}/v1/connect`, {
      headers: { cookie },
      perMessageDeflate: false,
      handshakeTimeout: TIMEOUT_MS,
    });
    const fail = (err: Error): void => {
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      ws.off('error', fail);
      resolve(ws);
    });
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`connect: HTTP ${res.statusCode}`)));
  });
}

export class SignalChurn {
  private sockets: Array<WebSocket | undefined> = [];
  private round: SignalRound | undefined;

  constructor(
    private readonly base: string,
    private readonly count: number,
    private readonly messages: number,
    private readonly cookies: SignalCookies,
  ) {}

  /** Registers, connects and exchanges messages; resolves when every pair is done or timed out. */
  async connect(): Promise<void> {
    const failures = new Failures();
    const r: SignalRound = {
      attempted: this.count,
      connected: 0,
      messagesExpected: 0,
      messagesDelivered: 0,
      closedGracefully: 0,
      destroyed: 0,
      failures,
    };
    this.round = r;
    const wsBase = this.base.replace('http', 'ws');
    this.sockets = new Array<WebSocket | undefined>(this.count);
    for (let i = 0; i < this.count; i += BATCH) {
      await Promise.all(
        Array.from({ length: Math.min(BATCH, this.count - i) }, async (_, j) => {
          const n = i + j;
          try {
            const ws = await open(wsBase, await register(this.base, `soak${n}`, this.cookies));
            // A socket the server closes later (heartbeat, REPLACED) is a failure to report.
            ws.on('close', (code, reason) => {
              if (this.sockets[n] === ws) failures.add(`closed by server: ${code} ${reason.toString()}`);
            });
            ws.on('error', (err) => failures.add(`socket error: ${err.message}`));
            this.sockets[n] = ws;
            r.connected++;
          } catch (err) {
            failures.add(err);
          }
        }),
      );
    }
    await this.exchange(r);
  }

  /** Each socket sends `messages` frames to its pair partner and counts what it receives. */
  private async exchange(r: SignalRound): Promise<void> {
    let delivered = 0;
    const waits: Array<Promise<void>> = [];
    for (let a = 0; a + 1 < this.count; a += 2) {
      const pair = [this.sockets[a], this.sockets[a + 1]] as const;
      if (!pair[0] || !pair[1]) continue;
      for (const [self, peer] of [
        [pair[0], a + 1],
        [pair[1], a],
      ] as const) {
        r.messagesExpected += this.messages;
        let got = 0;
        waits.push(
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              self.off('message', onMessage);
              r.failures.add('signal message not delivered in 15 s');
              resolve();
            }, TIMEOUT_MS);
            const onMessage = (data: WebSocket.RawData): void => {
              const msg = JSON.parse((data as Buffer).toString()) as { type: string; originator?: string };
              if (msg.type !== 'soak') {
                r.failures.add(`signal reply ${msg.type}`);
                return;
              }
              delivered++;
              if (++got < this.messages) return;
              clearTimeout(timer);
              self.off('message', onMessage);
              resolve();
            };
            self.on('message', onMessage);
          }),
        );
        for (let m = 0; m < this.messages; m++)
          self.send(
            JSON.stringify({ target: `soak${peer}`, type: 'soak', payload: { m, pad: 'x'.repeat(64) } }),
          );
      }
    }
    await Promise.all(waits);
    r.messagesDelivered = delivered;
  }

  /** Drops every socket: even ones with a close frame, odd ones by destroying the TCP socket. */
  drop(): SignalRound {
    const r = this.round!;
    this.sockets.forEach((ws, i) => {
      if (!ws) return;
      this.sockets[i] = undefined;
      if (i % 2 === 0) {
        ws.close(1000, 'soak');
        r.closedGracefully++;
      } else {
        ws.terminate(); // destroys the TCP socket: no close frame
        r.destroyed++;
      }
    });
    return r;
  }
}
