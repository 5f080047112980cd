// A forwarded frame carries the sender's own text after the originator when the sender
// wrote exactly target, type and payload (#17.1: the payload is not serialised again), so
// the payload passes through untouched, as the original's protocol says: numbers beyond
// a double's precision, their spelling and the sender's whitespace included. Any other
// frame is serialised as before: the server's originator wins over one the client names,
// unknown keys are dropped, an absent payload is null.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { connectSignalUser } from '../fixtures/signal-user.js';
import { type TestSocket, eventually } from '../fixtures/ws-client.js';

let t: TestServer;

const connect = (name: string): Promise<TestSocket> => connectSignalUser(t, name);

beforeAll(async () => {
  t = await startTestServer({ signal: { rateLimitPerSecond: 1000, rateLimitBurst: 1000 } });
});
afterAll(async () => {
  await t.close();
});

describe('Signal forwarding of the sender text', () => {
  it('passes a payload through as the sender wrote it', async () => {
    const a = await connect('verbatim-alice');
    const b = await connect('verbatim-bob');
    const payloads = [
      '{"id":12345678901234567890,"x":1.50,"e":1E2}',
      '[0.1e-7, -0 ,{"sdp":"v=0\\r\\n\\u00e9"}]',
      '"caf\u00e9 \\ud83c\\udfa7"',
      'null',
    ];
    for (const [i, payload] of payloads.entries())
      a.send(`{"target":"verbatim-bob","type":"t${i}","payload":${payload}}`);
    // Whitespace around the object and between its keys is the sender's too.
    a.send(' \n{ "target" : "verbatim-bob", "type":"ws", "payload" : [ 1 ,2 ] }\t');
    await eventually(() => b.messages.length >= payloads.length + 1, 30_000, 'bob hears every frame');
    expect(b.messages).toEqual([
      ...payloads.map(
        (payload, i) =>
          `{"originator":"verbatim-alice","target":"verbatim-bob","type":"t${i}","payload":${payload}}`,
      ),
      '{"originator":"verbatim-alice", "target" : "verbatim-bob", "type":"ws", "payload" : [ 1 ,2 ] }\t',
    ]);
    for (const m of b.messages) expect(JSON.parse(m)).toMatchObject({ originator: 'verbatim-alice' });
    a.close();
    b.close();
  }, 60_000);

  it('serialises any other frame: the server names the originator, other keys are dropped', async () => {
    const a = await connect('shaped-alice');
    const b = await connect('shaped-bob');
    const frames = [
      // A client naming an originator must not be able to pass for another user.
      '{"originator":"shaped-mallory","target":"shaped-bob","type":"spoof","payload":1}',
      '{"target":"shaped-bob","type":"spoof2","payload":2,"originator":"shaped-mallory"}',
      '{"target":"shaped-bob","type":"extra","payload":3,"room":"r1"}',
      '{"payload":{"z":1.50},"type":"reordered","target":"shaped-bob"}',
      '{"target":"shaped-bob","type":"absent"}',
      // The same key twice: the last one counts, and so for bob.
      '{"target":"nobody","type":"dup","payload":4,"target":"shaped-bob"}',
    ];
    for (const f of frames) a.send(f);
    await eventually(() => b.messages.length >= frames.length, 30_000, 'bob hears every frame');
    const at = (type: string, payload: unknown): string =>
      JSON.stringify({ originator: 'shaped-alice', target: 'shaped-bob', type, payload });
    expect(b.messages.slice(0, 5)).toEqual([
      at('spoof', 1),
      at('spoof2', 2),
      at('extra', 3),
      at('reordered', { z: 1.5 }),
      at('absent', null),
    ]);
    expect(JSON.parse(b.messages[5]!)).toEqual({
      originator: 'shaped-alice',
      target: 'shaped-bob',
      type: 'dup',
      payload: 4,
    });
    // Bad frames still get their notice, and the connection keeps forwarding.
    a.send('{"target":"shaped-bob","type":"deep","payload":' + '['.repeat(70) + ']'.repeat(70) + '}');
    a.send('{"target":"shaped-bob","type":"after","payload":"ok"}');
    await eventually(() => a.messages.length >= 1 && b.messages.length >= 7, 30_000, 'notice and forward');
    expect(JSON.parse(a.messages[0]!)).toMatchObject({ type: 'INVALID_MESSAGE' });
    expect(b.messages[6]).toBe(at('after', 'ok'));
    a.close();
    b.close();
  }, 60_000);
});
