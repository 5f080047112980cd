import type { WebSocket } from 'ws';
import type { SocketTracker } from '../api/surface-context.js';
import type { ServerMetrics } from './metrics.js';

/**
 * Knows every open WebSocket of every surface: feeds the open-sockets gauge and closes
 * them all with 1001 on shutdown.
 */
export class WebSocketTracker implements SocketTracker {
  private readonly open = new Set<WebSocket>();
  /** Set by closeAll: how a socket that opens after it is closed. */
  private closing: { code: number; reason: string; ms: number } | undefined;

  constructor(private readonly metrics: ServerMetrics) {}

  track(surface: string, socket: WebSocket): void {
    this.open.add(socket);
    const counts = this.metrics.websockets(surface);
    counts.open++;
    counts.total++;
    // `on`: a socket closes once, and once's wrapper is one more function per socket.
    socket.on('close', () => {
      this.open.delete(socket);
      counts.open--;
    });
    // An upgrade that passed the drain gate before the stop began can complete after
    // closeAll (its admission awaited the store or the coordinator meanwhile). Left open,
    // it would hold the HTTP server's close, and so the whole stop, for as long as the
    // client stays: it is told 1001 as the others were.
    if (this.closing) this.closeLate(socket, this.closing);
  }

  get size(): number {
    return this.open.size;
  }

  /** Sends a close frame to every socket; resolves when all are closed or `ms` passed. */
  async closeAll(code: number, reason: string, ms: number): Promise<void> {
    this.closing = { code, reason, ms };
    const pending = [...this.open].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.readyState === s.CLOSED) return resolve();
          s.once('close', () => resolve());
          s.close(code, reason);
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    if (timer) clearTimeout(timer);
    for (const s of this.open) s.terminate();
  }

  private closeLate(
    socket: WebSocket,
    { code, reason, ms }: { code: number; reason: string; ms: number },
  ): void {
    const timer = setTimeout(() => socket.terminate(), ms);
    socket.once('close', () => clearTimeout(timer));
    socket.close(code, reason);
  }
}
