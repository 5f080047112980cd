import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlMessage, parseControl, serializeControl } from '../../src/api/stream/control-message.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

// The Stream surface's client input: the coordinator's control messages (parsed by
// parseControl) and the frames publishers and receivers send. docs/stream.md: publishers'
// binary messages are the chunks, byte for byte and in order; text only keeps a socket
// alive; a receiver that sends binary is closed with 1003; a publisher message over
// STREAM_MAX_MESSAGE_BYTES closes it with 1009 (and its receivers with 1000).

const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/);
const headerValue = fc
  .stringMatching(/^[^\s:][^\r\n]{0,40}$/)
  .map((v) => v.trim())
  .filter((v) => v !== '');

describe('parseControl (unit)', () => {
  it('never throws, and reads what it can of any text', () => {
    const nearValid = fc
      .tuple(
        fc.oneof(
          fc.constantFrom('PUBLISH-ACCEPT', 'publish-deny', 'STREAM-KILL', 'HEARTBEAT', ''),
          fc.string(),
        ),
        fc.array(
          fc.oneof(
            fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 })).map(([k, v]) => `${k}:${v}`),
            fc.string({ maxLength: 40 }),
          ),
          { maxLength: 8 },
        ),
        fc.constantFrom('\n', '\r\n'),
        fc.option(fc.string({ maxLength: 100 })),
      )
      .map(([m, lines, eol, body]) => [m, ...lines].join(eol) + (body === null ? '' : `${eol}${eol}${body}`));
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), nearValid),
        (text) => {
          const m = parseControl(text);
          const first = (text.split('\n')[0] ?? '').trim();
          if (first === '') {
            expect(m).toBeUndefined();
            return;
          }
          expect(m).toBeDefined();
          expect(m!.method).toBe(first.toUpperCase());
          for (const k of m!.params.keys()) expect(k).toBe(k.toLowerCase());
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads back what serializeControl writes', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z][A-Za-z-]{0,20}$/),
        fc.dictionary(headerName, headerValue, { maxKeys: 6 }),
        fc.option(fc.string({ maxLength: 80 }).map((b) => `${b.replace(/^\s*\n/, 'x')}\n`)),
        (method, params, body) => {
          const m = controlMessage(method, params, body ?? '');
          const back = parseControl(serializeControl(m))!;
          expect(back.method).toBe(m.method);
          expect([...back.params]).toEqual([...m.params]);
          if (body !== null && body.trim() !== '') expect(back.body).toBe(m.body);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('generated frames over real Stream WebSockets', () => {
  const MAX = 32 * 1024;
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ stream: { maxMessageBytes: MAX } });
  });
  afterAll(() => t.close());

  const frame = fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .uint8Array({ minLength: 1, maxLength: 2048 })
        .map((b) => ({ binary: true, data: Buffer.from(b) })),
    },
    {
      weight: 2,
      arbitrary: fc.string({ maxLength: 200 }).map((s) => ({ binary: false, data: Buffer.from(s) })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(MAX, MAX + 1, MAX * 2)
        .map((n) => ({ binary: true, data: Buffer.alloc(n, 1) })),
    },
  );

  it('forwards, ignores or refuses each frame as documented', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(frame, { maxLength: 8 }),
        fc.array(frame, { maxLength: 4 }),
        async (fromPub, fromRx) => {
          const channel = `fuzz-${run++}`;
          const pub = await TestSocket.open(`${t.wsUrl}/${channel}/key/publish`);
          const rx = await TestSocket.open(`${t.wsUrl}/${channel}/key/receive`);
          try {
            // Publisher first: what the receiver must get, in order, until an oversize message.
            const expected: Buffer[] = [];
            let pubClosed = false;
            for (const f of fromPub) {
              pub.ws.send(f.data, { binary: f.binary });
              if (!f.binary) continue;
              if (f.data.length > MAX) {
                pubClosed = true;
                break;
              }
              expected.push(f.data);
            }
            if (pubClosed) {
              expect((await pub.closed).code).toBe(1009);
              const rxClose = await rx.closed;
              expect([rxClose.code, rxClose.reason]).toEqual([1000, 'stream ended']);
            } else {
              await rx.binaryCount(expected.length, 10_000);
            }
            expect(rx.binaries.map((b) => b.toString('hex'))).toEqual(expected.map((b) => b.toString('hex')));
            if (pubClosed) return;
            // Then the receiver's own frames: text is ignored, binary closes it with 1003,
            // and a message over the limit (the surface's, applied by ws) with 1009.
            const firstBad = fromRx.find((f) => f.binary || f.data.length > MAX);
            for (const f of fromRx)
              if (rx.ws.readyState === rx.ws.OPEN) rx.ws.send(f.data, { binary: f.binary });
            if (firstBad) expect((await rx.closed).code).toBe(firstBad.data.length > MAX ? 1009 : 1003);
            else {
              // Still open and still served.
              pub.ws.send(Buffer.from([9, 9, 9]));
              await rx.binaryCount(expected.length + 1, 10_000);
            }
          } finally {
            pub.close();
            rx.close();
            await Promise.all([pub.closed, rx.closed]);
          }
        },
      ),
      { numRuns: 40 },
    );
    // A normal publisher and receiver afterwards.
    const pub = await TestSocket.open(`${t.wsUrl}/after-fuzz/key/publish`);
    const rx = await TestSocket.open(`${t.wsUrl}/after-fuzz/key/receive`);
    pub.ws.send(Buffer.from('chunk-1'));
    pub.ws.send(Buffer.from('chunk-2'));
    await rx.binaryCount(2);
    expect(rx.binaries.map((b) => b.toString())).toEqual(['chunk-1', 'chunk-2']);
    pub.close();
    rx.close();
    await eventually(() => t.server.tracker.size === 0, 10_000, 'the sockets to close');
  });
});
