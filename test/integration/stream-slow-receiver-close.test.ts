import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually, type Closed } from '../fixtures/ws-client.js';

describe('STREAM_SLOW_RECEIVER=close', () => {
  it('closes a receiver that cannot keep up with a real close frame, 1013 "receiver too slow", as the docs say', async () => {
    const limit = 256 * 1024;
    const s = await startTestServer({
      stream: {
        receiverQueueBytes: limit,
        slowReceiver: 'close',
        gopCacheSizeMb: 0,
        maxIpConcurrentConnections: 100,
      },
    });
    try {
      const pub = await TestSocket.open(`${s.wsUrl}/slow/k/publish`);
      // A receiver that stops reading: its TCP socket is paused, so the server's queue fills.
      const ws = new WebSocket(`${s.wsUrl}/slow/k/receive`);
      const raw = await new Promise<{ pause(): void; resume(): void }>((resolve, reject) => {
        ws.once('open', () => {
          const sock = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
          sock.pause();
          resolve(sock);
        });
        ws.once('error', reject);
      });
      const closed = new Promise<Closed>((resolve) =>
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      ws.on('error', () => undefined);
      await eventually(() => s.server.engine.streams.find('slow') !== undefined, 10_000, 'the channel');
      const channel = s.server.engine.streams.find('slow')!;
      await eventually(() => channel.receiverCount === 1, 10_000, 'the receiver to join');
      const size = 64 * 1024;
      // 25 MiB: far more than the queue and the kernel's buffers hold.
      for (let i = 0; i < 400; i++) pub.ws.send(Buffer.alloc(size, i % 256));
      await eventually(() => channel.receiverCount === 0, 20_000, 'the slow receiver to be dropped');
      // It reads again: what was queued, then the close frame.
      raw.resume();
      expect(await closed).toEqual({ code: 1013, reason: 'receiver too slow' });
      pub.close();
    } finally {
      await s.close();
    }
  }, 60_000);
});
