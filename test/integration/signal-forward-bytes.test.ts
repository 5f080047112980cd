// A real server forwarding generated frames (#17.1 session 13: the frames clients send are
// forwarded as their bytes, found valid without parsing them): what the target's socket
// receives is byte for byte what the text path (decode, parseInbound, forwardedFrame)
// makes of each frame, and what the sender hears (INVALID_MESSAGE with its reason,
// TARGET_NOT_FOUND) is what that path answers, in order, for a mix of wire-shaped frames,
// frames of every other shape and byte-level mutations of both.
import { isUtf8 } from 'node:buffer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { connectSignalUser } from '../fixtures/signal-user.js';
import { type TestSocket, eventually } from '../fixtures/ws-client.js';
import { FrameGen, prng } from '../fixtures/signal-frame-gen.js';
import {
  TARGET_NOT_FOUND,
  forwardedFrame,
  noticeFrame,
  parseInbound,
} from '../../src/api/signal/signal-wire.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ signal: { rateLimitPerSecond: 100_000, rateLimitBurst: 100_000 } });
});
afterAll(async () => {
  await t.close();
});

const SENDER = 'bytes-alice';
const TARGET = 'bytes-bob';

/** Frames for bob: the generator's, with their target made bob's (plain or escaped). */
function framesFor(gen: FrameGen, n: number): Buffer[] {
  const out: Buffer[] = [];
  while (out.length < n) {
    const k = gen.int(10);
    let text = k < 5 ? gen.wireFrame() : gen.frame();
    const target = gen.chance(0.9) ? `"${TARGET}"` : `"bytes-b\\u006fb"`;
    text = text.replace(/("target"\s*:\s*)"(?:[^"\\]|\\.)*"/, `$1${target}`);
    let frame: Buffer = Buffer.from(text);
    if (k === 9) frame = gen.mutate(frame);
    // Invalid UTF-8 never reaches the connection: ws closes with 1007 (websocket-limits).
    if (isUtf8(frame) && frame.length > 0) out.push(frame);
  }
  return out;
}

describe('Signal forwarding as bytes', () => {
  it('delivers byte for byte what the text path makes of each frame, and the same notices', async () => {
    const alice = await connectSignalUser(t, SENDER);
    const bob = await connectSignalUser(t, TARGET);
    const raw: Buffer[] = [];
    bob.ws.on('message', (data: Buffer) => raw.push(data));

    const frames = framesFor(new FrameGen(prng(0xb17e5)), 3000);
    const toBob: Buffer[] = [];
    const toAlice: string[] = [];
    for (const f of frames) {
      const text = f.toString('utf8');
      const m = parseInbound(text);
      if (typeof m === 'string') toAlice.push(noticeFrame('INVALID_MESSAGE', m));
      else if (m.target === TARGET) toBob.push(Buffer.from(forwardedFrame(SENDER, m, text)));
      else toAlice.push(TARGET_NOT_FOUND);
    }
    // Both paths are exercised: frames bob gets, and notices alice gets.
    expect(toBob.length).toBeGreaterThan(1000);
    expect(toAlice.length).toBeGreaterThan(100);

    for (const f of frames) alice.ws.send(f, { binary: false });
    await eventually(
      () => raw.length >= toBob.length && alice.messages.length >= toAlice.length,
      60_000,
      'every frame forwarded or answered',
    );
    expect(raw.length).toBe(toBob.length);
    for (let i = 0; i < toBob.length; i++)
      expect(raw[i]!.equals(toBob[i]!), `frame ${i}: ${toBob[i]!.toString()}`).toBe(true);
    // A notice for a target connected nowhere comes when the bus says so (later): the
    // INVALID_MESSAGE notices keep their order, the TARGET_NOT_FOUND ones their number.
    const invalid = (xs: string[]): string[] => xs.filter((x) => x !== TARGET_NOT_FOUND);
    expect(invalid(alice.messages)).toEqual(invalid(toAlice));
    expect(alice.messages.length).toBe(toAlice.length);
    alice.close();
    bob.close();
  }, 120_000);

  it('keeps forwarding after a frame that is not a message, and after an abrupt disconnect', async () => {
    const alice = await connectSignalUser(t, 'bytes-carol');
    const bob: TestSocket = await connectSignalUser(t, 'bytes-dave');
    alice.ws.send('{"target":"bytes-dave","type":"t","payload":[1,]}');
    alice.ws.send('{"target":"bytes-dave","type":"t","payload":{"ok":true}}');
    await eventually(
      () => alice.messages.length >= 1 && bob.messages.length >= 1,
      30_000,
      'notice and forward',
    );
    expect(alice.messages[0]).toBe(noticeFrame('INVALID_MESSAGE', 'malformed JSON'));
    expect(bob.messages[0]).toBe(
      '{"originator":"bytes-carol","target":"bytes-dave","type":"t","payload":{"ok":true}}',
    );
    // The target goes away without a close frame: the sender hears TARGET_NOT_FOUND.
    bob.ws.terminate();
    await bob.closed;
    await eventually(
      () => {
        alice.ws.send('{"target":"bytes-dave","type":"t","payload":null}');
        return alice.messages.includes(TARGET_NOT_FOUND);
      },
      30_000,
      'TARGET_NOT_FOUND once bob is gone',
    );
    alice.close();
  }, 120_000);
});
