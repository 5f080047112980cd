/**
 * Browser side of the Stream surface: `/{channel}/{key}/{kind}` WebSockets carrying
 * binary chunks, with the text `h` heartbeat in both directions.
 */
export type StreamKind = 'publish' | 'receive' | 'receive-clear-cache' | 'probe';

export class StreamConnection extends EventTarget {
  readonly socket: WebSocket;
  private readonly heartbeat: number;
  bytes = 0;
  messages = 0;

  constructor(channel: string, key: string, kind: StreamKind, base = location.href) {
    super();
    const url = new URL(`/${encodeURIComponent(channel)}/${encodeURIComponent(key)}/${kind}`, base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.socket = new WebSocket(url);
    this.socket.binaryType = 'arraybuffer';
    this.heartbeat = window.setInterval(() => {
      if (this.socket.readyState === WebSocket.OPEN) this.socket.send('h');
    }, 20_000);
    this.socket.addEventListener('message', (ev: MessageEvent<ArrayBuffer | string>) => {
      if (typeof ev.data === 'string') {
        if (ev.data.startsWith('ERROR:'))
          this.dispatchEvent(new CustomEvent('error-text', { detail: ev.data }));
        return;
      }
      this.bytes += ev.data.byteLength;
      this.messages++;
      this.dispatchEvent(new CustomEvent('chunk', { detail: ev.data }));
    });
    this.socket.addEventListener('close', (ev) => {
      clearInterval(this.heartbeat);
      this.dispatchEvent(new CustomEvent('close', { detail: { code: ev.code, reason: ev.reason } }));
    });
  }

  opened(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.addEventListener('open', () => resolve(), { once: true });
      this.socket.addEventListener('close', () => reject(new Error('refused or closed')), { once: true });
    });
  }

  send(chunk: ArrayBuffer | Uint8Array<ArrayBuffer>): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(chunk);
    this.bytes += chunk.byteLength;
    this.messages++;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.socket.close(1000, 'bye');
  }
}

/** The WebM codecs named in a stream's first chunk (its EBML header), for MediaSource. */
export function webmMimeFromHeader(first: Uint8Array): string {
  const text = new TextDecoder('latin1').decode(first.subarray(0, 4096));
  const codecs = [
    text.includes('V_VP9')
      ? 'vp9'
      : text.includes('V_VP8')
        ? 'vp8'
        : text.includes('V_MPEG4/ISO/AVC')
          ? 'avc1.42E01E'
          : '',
    text.includes('A_OPUS') ? 'opus' : text.includes('A_VORBIS') ? 'vorbis' : '',
  ].filter(Boolean);
  return codecs.length > 0 ? `video/webm; codecs="${codecs.join(',')}"` : 'video/webm';
}
