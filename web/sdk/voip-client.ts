/**
 * Browser client of the VOIP surface in standalone mode: an ECDSA P-256 key kept in
 * the browser (WebCrypto), the original's challenge handshake, events from
 * `/messages`, the microphone uploaded as s16le over WebSocket (from an AudioWorklet,
 * at the AudioContext's rate, declared so the server resamples), and the other
 * side's audio as raw Opus over WebSocket, decoded with WebCodecs (no Ogg buffering).
 */

const hex = (b: ArrayBuffer | Uint8Array): string =>
  Array.from(b instanceof Uint8Array ? b : new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join(
    '',
  );
const unhexBytes = (h: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(h.match(/../g)!.map((x) => parseInt(x, 16)));

export type VoipEvent =
  'newCall' | 'answer' | 'answer2' | 'acceptedCall' | 'declineCall' | 'setAudioConf' | 'endCall' | 'newRoom';

export interface EventData {
  from?: string;
  answer?: string;
  challenge?: string;
  roomid?: string | number;
  in?: string;
  out?: string;
  name?: string;
}

const KEY_STORAGE = 'chorus.voip.key';

/** The user's key pair, created once and kept in localStorage (as JWK). */
export async function loadOrCreateKey(): Promise<CryptoKeyPair> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  const stored = localStorage.getItem(KEY_STORAGE);
  if (stored) {
    const { priv, pub } = JSON.parse(stored) as { priv: JsonWebKey; pub: JsonWebKey };
    return {
      privateKey: await crypto.subtle.importKey('jwk', priv, alg, true, ['sign']),
      publicKey: await crypto.subtle.importKey('jwk', pub, alg, true, ['verify']),
    };
  }
  const pair = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const priv = await crypto.subtle.exportKey('jwk', pair.privateKey);
  const pub = await crypto.subtle.exportKey('jwk', pair.publicKey);
  localStorage.setItem(KEY_STORAGE, JSON.stringify({ priv, pub }));
  return pair;
}

/** Hex of the compressed point: the user's id on the wire. */
async function compressedId(publicKey: CryptoKey): Promise<string> {
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey)); // 04 | x | y
  const prefix = (raw[64]! & 1) === 1 ? 3 : 2;
  return hex(new Uint8Array([prefix, ...raw.subarray(1, 33)]));
}

export class VoipClient {
  id = '';
  private ticket = '';
  private source: EventSource | undefined;
  /** Challenges I sent, by peer, to check the peer's signature of them. */
  readonly sent = new Map<string, string>();
  readonly handlers = new Map<VoipEvent, (d: EventData) => void>();
  /** Called once when an open event stream fails (the server went away); the stream is closed. */
  onLost: (() => void) | undefined;

  constructor(
    private readonly keys: CryptoKeyPair,
    readonly base = '',
  ) {}

  static async create(base = ''): Promise<VoipClient> {
    const c = new VoipClient(await loadOrCreateKey(), base);
    c.id = await compressedId(c.keys.publicKey);
    return c;
  }

  on(name: VoipEvent, handler: (d: EventData) => void): void {
    this.handlers.set(name, handler);
  }

  /**
   * Opens the event stream; events arrive hex-wrapped and are decoded here. The URL is
   * signed over a fresh ticket, which proves the key is ours: only then does the server
   * replay events missed while the stream was down (EventSource's own reconnects send
   * Last-Event-ID; after the ticket has moved on they get live events only).
   */
  async connect(): Promise<void> {
    const query = new URLSearchParams({ PKey: this.id });
    // A server in side-site mode has no tickets: its streams are opened unsigned.
    const ticket = await this.refreshTicket().catch(() => undefined);
    if (ticket) query.set('Signature', await this.sign(ticket));
    this.source?.close();
    return new Promise((resolve, reject) => {
      const es = new EventSource(`${this.base}/messages?${query.toString()}`);
      this.source = es;
      let open = false;
      es.addEventListener(
        'pubkey',
        () => {
          open = true;
          resolve();
        },
        { once: true },
      );
      // EventSource would reconnect by itself, unsigned (no replay of what was missed):
      // the page reconnects instead, signed over a fresh ticket.
      es.addEventListener('error', () => {
        es.close();
        if (!open) reject(new Error('event stream failed'));
        else if (this.source === es) this.onLost?.();
      });
      for (const name of [
        'newCall',
        'answer',
        'answer2',
        'acceptedCall',
        'declineCall',
        'setAudioConf',
        'endCall',
        'newRoom',
      ] as const) {
        es.addEventListener(name, (ev) => {
          const text = new TextDecoder().decode(
            unhexBytes(JSON.parse((ev as MessageEvent<string>).data) as string),
          );
          this.handlers.get(name)?.(JSON.parse(text) as EventData);
        });
      }
    });
  }

  close(): void {
    this.source?.close();
  }

  async sign(challenge: string): Promise<string> {
    const sig = await crypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      this.keys.privateKey,
      new TextEncoder().encode(challenge),
    );
    return hex(sig);
  }

  /**
   * Checks a peer's signature of a challenge I sent (WebCrypto form). Peers signing
   * the original's way (raw digest) cannot be checked in WebCrypto: the server has
   * verified them, so the result is then "unverified here", not "forged".
   */
  async verifyPeer(peer: string, challenge: string, signatureHex: string): Promise<boolean> {
    try {
      const raw = unhexBytes(peer);
      const key = await crypto.subtle.importKey('raw', raw, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
        'verify',
      ]);
      const sig = unhexBytes(signatureHex);
      return (
        sig.length === 64 &&
        (await crypto.subtle.verify(
          { name: 'ECDSA', hash: 'SHA-256' },
          key,
          sig,
          new TextEncoder().encode(challenge),
        ))
      );
    } catch {
      return false;
    }
  }

  async refreshTicket(): Promise<string> {
    const res = await fetch(`${this.base}/getCallTicket`, { headers: { PKey: this.id } });
    if (!res.ok) throw new Error(`getCallTicket: ${res.status} ${await res.text()}`);
    this.ticket = await res.text();
    return this.ticket;
  }

  private async post(path: string, form: Record<string, string>): Promise<string> {
    const res = await fetch(`${this.base}${path}`, {
      method: 'POST',
      headers: { PKey: this.id, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${path}: ${res.status} ${text.trim()}`);
    return text;
  }

  private challenge(peer: string): string {
    const c = hex(crypto.getRandomValues(new Uint8Array(8)));
    this.sent.set(peer, c);
    return c;
  }

  async call(peer: string): Promise<void> {
    await this.refreshTicket();
    this.ticket = await this.post('/newCall', {
      Destination: peer,
      challenge: this.challenge(peer),
      signature: await this.sign(this.ticket),
    });
  }

  /** Callee, on newCall: prove my key over the caller's challenge, send mine. */
  async answer(peer: string, challenge: string): Promise<void> {
    await this.post('/answer', {
      Destination: peer,
      challenge: this.challenge(peer),
      signature: await this.sign(challenge),
    });
  }

  /** Caller, on answer: prove my key over the callee's challenge, send the last one. */
  async answer2(peer: string, challenge: string): Promise<void> {
    await this.post('/answer2', {
      Destination: peer,
      challenge: this.challenge(peer),
      signature: await this.sign(challenge),
    });
  }

  async decide(peer: string, challenge: string, accept: boolean): Promise<void> {
    await this.post(accept ? '/acceptCall' : '/rejectCall', {
      From: peer,
      signature: await this.sign(challenge),
    });
  }

  async hangUp(peer: string): Promise<void> {
    await this.post('/endCall', { Destination: peer });
  }

  /** Sets my display name (Chorus's own route), signed over a fresh ticket: only my key can name me. */
  async setDisplayName(name: string): Promise<void> {
    const ticket = await this.refreshTicket();
    await this.post('/setDisplayName', { name, Signature: await this.sign(ticket) });
  }

  /** Display names of `keys` (those that set one). */
  async displayNames(keys: readonly string[]): Promise<Record<string, string>> {
    if (keys.length === 0) return {};
    const res = await fetch(`${this.base}/displayNames?keys=${keys.join(',')}`);
    return res.ok ? ((await res.json()) as Record<string, string>) : {};
  }

  /** The keys in a room (mic: whether the member's microphone streams). */
  async members(room: string): Promise<{ pubkey: string; mic: number }[]> {
    const res = await fetch(`${this.base}/listMembers?roomID=${encodeURIComponent(room)}`);
    return res.ok ? ((await res.json()) as { pubkey: string; mic: number }[]) : [];
  }

  /** Query string of a media route, signed over a fresh ticket (one ticket serves one upload and one listener). */
  async mediaQuery(params: Record<string, string>): Promise<string> {
    const ticket = await this.refreshTicket();
    return new URLSearchParams({ PKey: this.id, Signature: await this.sign(ticket), ...params }).toString();
  }

  wsUrl(path: string, query: string): string {
    const origin = this.base || location.origin;
    return `${origin.replace(/^http/, 'ws')}${path}?${query}`;
  }
}

const WORKLET = `
class PcmUp extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      const out = new Int16Array(ch.length);
      for (let i = 0; i < ch.length; i++) {
        const s = Math.max(-1, Math.min(1, ch[i]));
        out[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
      }
      this.port.postMessage(out.buffer, [out.buffer]);
    }
    return true;
  }
}
registerProcessor('pcm-up', PcmUp);
`;

/** Microphone to server: 128-sample s16le blocks at the context's rate, batched to ~20 ms. */
export async function startMicUpload(
  ctx: AudioContext,
  stream: MediaStream,
  url: (rate: number) => string,
): Promise<{ ws: WebSocket; stop(): void }> {
  const moduleUrl = URL.createObjectURL(new Blob([WORKLET], { type: 'text/javascript' }));
  await ctx.audioWorklet.addModule(moduleUrl);
  const src = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, 'pcm-up');
  const ws = new WebSocket(url(ctx.sampleRate));
  ws.binaryType = 'arraybuffer';
  const batch: ArrayBuffer[] = [];
  let bytes = 0;
  const target = Math.round(ctx.sampleRate / 50) * 2;
  node.port.onmessage = (e: MessageEvent<ArrayBuffer>) => {
    batch.push(e.data);
    bytes += e.data.byteLength;
    if (bytes < target) return;
    if (ws.readyState === WebSocket.OPEN) ws.send(new Blob(batch));
    batch.length = 0;
    bytes = 0;
  };
  src.connect(node);
  return {
    ws,
    stop() {
      src.disconnect();
      node.disconnect();
      ws.close();
    },
  };
}

export interface PlaybackStats {
  packets: number;
  decoded: number;
  /** Peak absolute sample of the last second, 0-1. */
  level: number;
}

/** Server to speaker: raw Opus packets over WebSocket, decoded with WebCodecs, played gap-free. */
export function startOpusPlayback(
  ctx: AudioContext,
  url: string,
): { ws: WebSocket; stats: PlaybackStats; stop(): void } {
  const stats: PlaybackStats = { packets: 0, decoded: 0, level: 0 };
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  let playAt = 0;
  let ts = 0;
  let peak = 0;
  let peakSince = performance.now();
  const decoder = new AudioDecoder({
    output: (data) => {
      const pcm = new Float32Array(data.numberOfFrames);
      data.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
      data.close();
      stats.decoded++;
      for (const s of pcm) peak = Math.max(peak, Math.abs(s));
      if (performance.now() - peakSince > 1000) {
        stats.level = peak;
        peak = 0;
        peakSince = performance.now();
      }
      const buf = ctx.createBuffer(1, pcm.length, 48_000);
      buf.copyToChannel(pcm, 0);
      const node = ctx.createBufferSource();
      node.buffer = buf;
      node.connect(ctx.destination);
      // 60 ms of jitter room; restart the schedule when it fell behind.
      if (playAt < ctx.currentTime) playAt = ctx.currentTime + 0.06;
      node.start(playAt);
      playAt += buf.duration;
    },
    error: () => ws.close(),
  });
  decoder.configure({ codec: 'opus', sampleRate: 48_000, numberOfChannels: 1 });
  ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
    if (typeof e.data === 'string') return; // the stream description
    stats.packets++;
    decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: ts, data: e.data }));
    ts += 20_000;
  };
  return {
    ws,
    stats,
    stop() {
      ws.close();
      if (decoder.state !== 'closed') decoder.close();
    },
  };
}
