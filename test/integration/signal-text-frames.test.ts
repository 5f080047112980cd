// What a Signal connection queues in one turn and writes at its end (#17.1): every length class of the
// frame header (7-bit, 16-bit, 64-bit), multi-byte UTF-8, many messages for one user in
// one turn, a notice among them, and the frames read by a real client (ws), which
// refuses a malformed frame (it would close with 1002 and the messages never arrive).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { connectSignalUser } from '../fixtures/signal-user.js';
import { type TestSocket, eventually } from '../fixtures/ws-client.js';

let t: TestServer;

const connect = (name: string): Promise<TestSocket> => connectSignalUser(t, name);

beforeAll(async () => {
  t = await startTestServer({
    signal: { rateLimitPerSecond: 10_000, rateLimitBurst: 10_000, maxFrameBytes: 256 * 1024 },
  });
});
afterAll(async () => {
  await t.close();
});

describe('Signal text frames', () => {
  it('delivers a burst of messages of every frame size, multi-byte text included, intact and in order', async () => {
    const a = await connect('frames-alice');
    const b = await connect('frames-bob');
    // Payload lengths around each header boundary (125/126, 65535/65536 bytes of frame)
    // and text whose UTF-8 is longer than its UTF-16 length.
    const pads = [0, 60, 61, 62, 200, 1000, 65_400, 65_500, 65_600, 100_000];
    const texts = pads.map((n, i) => `${i}:${'x'.repeat(n)}`);
    texts.push('é'.repeat(40), '€'.repeat(30_000), '🎉'.repeat(20_000), 'naïve — ünïcødé 🎧');
    const frames = texts.map((payload, i) => ({ target: 'frames-bob', type: `t${i}`, payload }));
    // All in one synchronous burst: the server reads several per turn and writes them
    // to bob together.
    for (const f of frames) a.send(JSON.stringify(f));
    await eventually(
      () => b.messages.length >= frames.length,
      30_000,
      () => `bob has ${b.messages.length}`,
    );
    expect(b.messages).toEqual(frames.map((f) => JSON.stringify({ originator: 'frames-alice', ...f })));
    a.close();
    b.close();
  }, 60_000);

  it('writes a notice in order with the messages delivered in the same turn', async () => {
    const a = await connect('order-alice');
    const b = await connect('order-bob');
    // bob sends alice two messages around one that is refused: alice hears them, bob the
    // refusal, each in the order bob sent.
    b.send(JSON.stringify({ target: 'order-alice', type: 'one', payload: 1 }));
    b.send('{not json');
    b.send(JSON.stringify({ target: 'nobody-here', type: 'lost', payload: null }));
    b.send(JSON.stringify({ target: 'order-alice', type: 'two', payload: 2 }));
    await eventually(() => a.messages.length >= 2 && b.messages.length >= 2, 30_000, 'all four answers');
    expect(a.messages.map((m) => (JSON.parse(m) as { type: string }).type)).toEqual(['one', 'two']);
    expect(b.messages.map((m) => (JSON.parse(m) as { type: string }).type)).toEqual([
      'INVALID_MESSAGE',
      'TARGET_NOT_FOUND',
    ]);
    a.close();
    b.close();
  }, 60_000);
});
