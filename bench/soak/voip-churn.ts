// One round of VOIP churn: group rooms (standalone mode, keys and signed tickets), each
// with one speaker uploading a tone over WebSocket and up to `roomSize` listeners. Even
// listeners read Ogg/Opus over HTTP and drop by aborting the request (the TCP connection
// just ends); odd ones take raw Opus over WebSocket and leave with a close frame. A
// listener counts as connected once audio has reached it. The same keys come back each
// round, with fresh tickets, as returning users would.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import WebSocket from 'ws';
import { Failures } from './failures.js';

export interface VoipRound {
  attempted: number;
  connected: number;
  speakers: number;
  failures: Failures;
}

interface User {
  id: string;
  key: KeyObject;
}

const TIMEOUT_MS = 15_000;
const BATCH = 50;

function newUser(): User {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const y = Buffer.from(jwk.y!, 'base64url');
  const prefix = Buffer.from([2 + (y[31]! & 1)]);
  return { id: Buffer.concat([prefix, Buffer.from(jwk.x!, 'base64url')]).toString('hex'), key: privateKey };
}

/** A media route's query: the user's key and a signature over a fresh ticket. */
async function signedQuery(base: string, u: User, params: Record<string, string>): Promise<string> {
  const res = await fetch(`${base}/getCallTicket`, {
    headers: { PKey: u.id },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const ticket = await res.text();
  if (!res.ok) throw new Error(`getCallTicket: HTTP ${res.status} ${ticket.trim().slice(0, 60)}`);
  const signature = sign('sha256', Buffer.from(ticket), { key: u.key, dsaEncoding: 'ieee-p1363' });
  return new URLSearchParams({ PKey: u.id, Signature: signature.toString('hex'), ...params }).toString();
}

/** Opens a WebSocket, refusing on an HTTP answer instead of an upgrade. */
function openWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: TIMEOUT_MS });
    const fail = (err: Error): void => {
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      ws.off('error', fail);
      resolve(ws);
    });
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade: HTTP ${res.statusCode}`)));
  });
}

/** 20 ms of a 440 Hz tone, 48 kHz mono s16le, 50 frames (one second) to loop over. */
const TONE = Array.from({ length: 50 }, (_, n) => {
  const b = Buffer.alloc(1920);
  for (let i = 0; i < 960; i++)
    b.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * 440 * (n * 960 + i)) / 48_000)), i * 2);
  return b;
});

export class VoipChurn {
  private readonly listenerKeys: User[];
  private readonly speakerKeys: User[];
  private readonly rooms: number;
  private httpListeners: AbortController[] = [];
  private wsListeners: WebSocket[] = [];
  private speakers: WebSocket[] = [];
  private timer: NodeJS.Timeout | undefined;
  private round: VoipRound | undefined;

  constructor(
    private readonly base: string,
    private readonly count: number,
    private readonly roomSize: number,
  ) {
    this.rooms = Math.ceil(count / roomSize);
    this.listenerKeys = Array.from({ length: count }, newUser);
    this.speakerKeys = Array.from({ length: this.rooms }, newUser);
  }

  async connect(): Promise<void> {
    const r: VoipRound = { attempted: this.count, connected: 0, speakers: 0, failures: new Failures() };
    this.round = r;
    const wsBase = this.base.replace('http', 'ws');
    for (let room = 0; room < this.rooms; room++) {
      try {
        const q = await signedQuery(this.base, this.speakerKeys[room]!, { roomID: `soak-room-${room}` });
        this.speakers.push(await openWs(`${wsBase}/upRoom?${q}`));
        r.speakers++;
      } catch (err) {
        r.failures.add(err);
      }
    }
    // One timer feeds every speaker its next frame, caught up against the clock.
    let tick = 0;
    const t0 = performance.now();
    this.timer = setInterval(() => {
      for (const due = Math.floor((performance.now() - t0) / 20); tick <= due; tick++)
        for (const ws of this.speakers) if (ws.readyState === WebSocket.OPEN) ws.send(TONE[tick % 50]!);
    }, 20);
    for (let i = 0; i < this.count; i += BATCH) {
      await Promise.all(
        Array.from({ length: Math.min(BATCH, this.count - i) }, async (_, j) => {
          const n = i + j;
          try {
            await this.listen(n, wsBase);
            r.connected++;
          } catch (err) {
            r.failures.add(err);
          }
        }),
      );
    }
  }

  /** Resolves once the listener has received audio. */
  private async listen(n: number, wsBase: string): Promise<void> {
    const roomID = `soak-room-${Math.floor(n / this.roomSize)}`;
    if (n % 2 === 0) {
      const q = await signedQuery(this.base, this.listenerKeys[n]!, { roomID, format: 'ogg' });
      const abort = new AbortController();
      this.httpListeners.push(abort);
      const timer = setTimeout(() => abort.abort(new Error('no audio within 15 s')), TIMEOUT_MS);
      try {
        const res = await fetch(`${this.base}/joinRoom?${q}`, { signal: abort.signal });
        if (!res.ok || !res.body) {
          const text = (await res.text()).trim().slice(0, 60);
          throw new Error(`joinRoom: HTTP ${res.status} ${text}`);
        }
        const reader = res.body.getReader();
        const first = await reader.read();
        if (first.done) throw new Error('joinRoom: stream ended before audio');
        // Keep reading (and discarding) so the server never sees a stalled listener.
        void (async () => {
          try {
            while (!(await reader.read()).done);
          } catch {
            /* aborted at drop */
          }
        })();
      } finally {
        clearTimeout(timer);
      }
      return;
    }
    const q = await signedQuery(this.base, this.listenerKeys[n]!, { roomID });
    const ws = await openWs(`${wsBase}/joinRoom?${q}`);
    this.wsListeners.push(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no Opus packet within 15 s')), TIMEOUT_MS);
      const onMessage = (_data: WebSocket.RawData, isBinary: boolean): void => {
        if (!isBinary) return; // the codec description comes first
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve();
      };
      ws.on('message', onMessage);
      ws.once('close', (code, reason) => {
        clearTimeout(timer);
        reject(new Error(`joinRoom closed: ${code} ${reason.toString()}`));
      });
    });
  }

  /** Drops every listener and speaker. */
  drop(): VoipRound {
    clearInterval(this.timer);
    for (const a of this.httpListeners.splice(0)) a.abort();
    for (const ws of this.wsListeners.splice(0)) ws.close(1000, 'soak');
    for (const ws of this.speakers.splice(0)) ws.close(1000, 'soak');
    return this.round!;
  }
}
