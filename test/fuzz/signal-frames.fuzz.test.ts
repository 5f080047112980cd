import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket } from '../fixtures/ws-client.js';

// Generated frames over a real /v1/connect socket: JSON of every shape, near-valid
// messages with wrong types, deep nesting around the 64-level limit, huge strings,
// unicode, garbage text and binary. docs/signal.md is the oracle: a frame is forwarded
// to its target unchanged, or answered TARGET_NOT_FOUND, or INVALID_MESSAGE; the socket
// stays open throughout, and a normal pair exchanges a message afterwards.

const MAX_DEPTH = 64;
/** Under SIGNAL_MAX_FRAME_BYTES (64 KiB), whose 1009 close is another test's subject. */
const FRAME_BUDGET = 60 * 1024;

let t: TestServer;
let alice: TestSocket;
let bob: TestSocket;

async function user(name: string): Promise<TestSocket> {
  const res = await fetch(`${t.url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  expect(res.status).toBe(200);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  return TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
}

beforeAll(async () => {
  // The fuzz sends thousands of frames from one connection: no rate limit in the way.
  t = await startTestServer({ signal: { rateLimitPerSecond: 100_000, rateLimitBurst: 100_000 } });
  alice = await user('fuzz-alice');
  bob = await user('fuzz-bob');
});
afterAll(async () => {
  alice.close();
  bob.close();
  await t.close();
});

/** How deep arrays and objects nest in a parsed value (a scalar is 0); no recursion. */
function depth(root: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    max = Math.max(max, d + 1);
    for (const x of Object.values(v as Record<string, unknown>)) stack.push([x, d + 1]);
  }
  return max;
}

const nested = (n: number, open: string, close: string, inner = '1') =>
  open.repeat(n) + (open === '[' ? inner : '') + close.repeat(n);
const nestedObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

const anyTarget = fc.oneof(
  fc.constantFrom('fuzz-bob', 'nobody-online', '', 'fuzz-bob '),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.jsonValue({ maxDepth: 2 }),
);
const anyPayload = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.nat(40_000).map((n) => 'x'.repeat(n)),
  fc.constantFrom({ type: 'offer', sdp: 'v=0\r\n' }, { candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host' }),
);

/** Text frames, as JSON near the protocol, JSON of any shape, and not JSON at all. */
const textFrame = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record(
        {
          target: anyTarget,
          type: fc.oneof(fc.string({ maxLength: 30 }), fc.jsonValue()),
          payload: anyPayload,
        },
        { requiredKeys: [] },
      )
      .map((m) => JSON.stringify(m)),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  {
    weight: 2,
    // Nesting around the limit, in the payload and at the top, arrays and objects.
    arbitrary: fc
      .tuple(
        fc.integer({ min: MAX_DEPTH - 4, max: MAX_DEPTH + 4 }),
        // Far past it too: 20,000 levels once overflowed JSON.stringify and killed the process.
        fc.integer({ min: 0, max: 25_000 }),
        fc.boolean(),
      )
      .chain(([near, far, objects]) =>
        fc.constantFrom(near, far).map((n) => {
          const payload = objects ? nestedObject(n) : nested(n, '[', ']');
          return `{"target":"fuzz-bob","type":"deep","payload":${payload}}`;
        }),
      ),
  },
  { weight: 1, arbitrary: fc.nat(25_000).map((n) => nested(n, '[', ']')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      '{',
      'null',
      '[]',
      '"x"',
      '1e999',
      '{"target":"fuzz-bob","type":"t","payload":}',
      '{"target":"fuzz-bob","type":"t"}',
      '{"target":"fuzz-bob","type":"t","payload":"\\ud800"}',
      '{"target":"fuzz-bob","type":"t","payload":"' + '['.repeat(5000) + '"}',
      '{"__proto__":{"target":"fuzz-bob"},"type":"t"}',
    ),
  },
);

type Frame = { kind: 'text'; text: string } | { kind: 'binary'; bytes: Uint8Array };
const frame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 9, arbitrary: textFrame.map((text): Frame => ({ kind: 'text', text })) },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 500 }).map((bytes): Frame => ({ kind: 'binary', bytes })),
  },
);

type Expected = { notice: 'INVALID_MESSAGE' | 'TARGET_NOT_FOUND' } | { forward: Record<string, unknown> };

/** What docs/signal.md says the server does with `f`, sent by fuzz-alice. */
function expected(f: Frame): Expected {
  if (f.kind === 'binary') return { notice: 'INVALID_MESSAGE' };
  let v: unknown;
  try {
    v = JSON.parse(f.text);
  } catch {
    return { notice: 'INVALID_MESSAGE' };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || depth(v) > MAX_DEPTH) {
    return { notice: 'INVALID_MESSAGE' };
  }
  const m = v as Record<string, unknown>;
  if (typeof m.target !== 'string' || m.target === '' || typeof m.type !== 'string') {
    return { notice: 'INVALID_MESSAGE' };
  }
  if (m.target !== 'fuzz-bob') return { notice: 'TARGET_NOT_FOUND' };
  return {
    forward: { originator: 'fuzz-alice', target: m.target, type: m.type, payload: m.payload ?? null },
  };
}

let sentinel = 0;

describe('Signal /v1/connect under generated frames', () => {
  it('forwards or refuses each exactly as documented, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        if (f.kind === 'text' && Buffer.byteLength(f.text) > FRAME_BUDGET) return;
        const want = expected(f);
        const aliceFrom = alice.messages.length;
        const bobFrom = bob.messages.length;
        if (f.kind === 'binary') alice.ws.send(f.bytes, { binary: true });
        else alice.ws.send(f.text);
        // Frames from one sender arrive in order: once bob has the sentinel, the
        // generated frame has been handled.
        const mark = `sentinel-${++sentinel}`;
        alice.send({ target: 'fuzz-bob', type: mark, payload: null });
        await bob.next((m) => m.includes(mark), 10_000, bobFrom);
        const toBob = bob.messages.slice(bobFrom).filter((m) => !m.includes(`"type":"${mark}"`));
        if ('forward' in want) {
          expect(toBob).toHaveLength(1);
          const got = JSON.parse(toBob[0]!) as Record<string, unknown>;
          expect(Object.keys(got)).toEqual(['originator', 'target', 'type', 'payload']);
          expect(got).toEqual(want.forward);
          expect(alice.messages.length).toBe(aliceFrom);
        } else {
          expect(toBob).toHaveLength(0);
          const notice = JSON.parse(
            await alice.next((m) => m.includes(want.notice), 10_000, aliceFrom),
          ) as Record<string, unknown>;
          expect(notice.target).toBe('');
          expect(notice.type).toBe(want.notice);
          expect(alice.messages.slice(aliceFrom)).toHaveLength(1);
        }
        expect(alice.ws.readyState).toBe(alice.ws.OPEN);
      }),
      { numRuns: 250 },
    );
  }, 60_000);

  it('still serves a normal pair afterwards', async () => {
    const carol = await user('after-carol');
    const dave = await user('after-dave');
    try {
      carol.send({ target: 'after-dave', type: 'video-offer', payload: { type: 'offer', sdp: 'v=0\r\n' } });
      expect(JSON.parse(await dave.next((m) => m.includes('video-offer')))).toEqual({
        originator: 'after-carol',
        target: 'after-dave',
        type: 'video-offer',
        payload: { type: 'offer', sdp: 'v=0\r\n' },
      });
      expect(alice.ws.readyState).toBe(alice.ws.OPEN);
    } finally {
      carol.close();
      dave.close();
    }
  });
});
