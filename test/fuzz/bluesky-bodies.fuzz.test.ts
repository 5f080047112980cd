import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

// Every Blue Sky route that takes a body, fed generated bodies: JSON values of every
// shape, wrong types, huge strings, bad base64 and gzip, text that is not JSON. Each gets
// one of the statuses docs/bluesky.md documents for the route, with {"error": "..."},
// and the server then serves a normal flow.

let t: TestServer;
let room: string;

const b64 = (o: unknown, gzip: boolean) => {
  const raw = Buffer.from(typeof o === 'string' ? o : (JSON.stringify(o) ?? 'undefined'));
  return (gzip ? gzipSync(raw) : raw).toString('base64');
};

/** Bodies: raw text of any kind, or JSON of near-valid and arbitrary shapes. */
const body = fc.oneof(
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', '{', '{"user_id":', 'null', '[]', '"x"', '1e999', '{"sdp":"\u0000"}'),
  },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          user_id: fc.oneof(fc.string({ maxLength: 140 }), fc.jsonValue(), fc.constant('a'.repeat(100_000))),
          sdp: fc.oneof(
            fc.string({ maxLength: 100 }),
            fc.base64String({ maxLength: 200 }),
            fc.jsonValue({ maxDepth: 2 }).map((v) => b64(v, false)),
            fc.jsonValue({ maxDepth: 2 }).map((v) => b64(v, true)),
            fc.record({ type: fc.jsonValue(), sdp: fc.jsonValue() }).map((d) => b64(d, true)),
            fc.constant(b64({ type: 'offer', sdp: 'v=0\r\n' }, true)),
            // Gzip cut short, and gzip with garbage after it.
            fc
              .nat(40)
              .map((n) =>
                gzipSync(Buffer.from('{"type":"offer","sdp":"v=0"}')).subarray(0, n).toString('base64'),
              ),
            fc.constant(
              Buffer.concat([gzipSync(Buffer.from('{}')), Buffer.from('trailing')]).toString('base64'),
            ),
            fc.constant('A'.repeat(700_000)),
          ),
          Sdp: fc.jsonValue(),
          type: fc.oneof(fc.constantFrom('offer', 'answer'), fc.jsonValue()),
        },
        { requiredKeys: [] },
      )
      .map((v) => JSON.stringify(v)),
  },
);

const send = (method: string, path: string, text: string) =>
  fetch(`${t.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: text });

beforeAll(async () => {
  t = await startTestServer({
    webrtc: { bindAddress: '127.0.0.1' },
    // The fuzz creates rooms by the hundred from one address: no rate limit in the way.
    bluesky: { roomCreateRatePerMinute: 100_000, roomCreateBurst: 100_000, maxOpenRoomsPerIp: 100_000 },
  });
  const res = await send('PUT', '/webrtc/room', JSON.stringify({ user_id: 'fuzz-admin' }));
  room = ((await res.json()) as { id: string }).id;
});
afterAll(async () => {
  await t.close();
});

/** Routes with a body, and the statuses their docs promise. */
const routes: Array<{ method: string; path: () => string; statuses: number[] }> = [
  { method: 'PUT', path: () => '/webrtc/room', statuses: [201, 400, 413] },
  { method: 'POST', path: () => `/webrtc/room/${room}/join`, statuses: [200, 400, 413] },
  { method: 'POST', path: () => `/api/webrtc/sdp/m/${room}/c/fuzzer/p/fuzzer/s/true`, statuses: [400, 413] },
  {
    method: 'POST',
    path: () => `/webrtc/sdp/m/${room}/c/fuzzer/p/fuzz-admin/s/false`,
    statuses: [400, 404, 413],
  },
  // Last: a body that names the admin would close the room the others use.
  { method: 'DELETE', path: () => `/webrtc/room/${room}`, statuses: [204, 400, 403, 404, 413] },
];

describe('Blue Sky request bodies (fuzz)', () => {
  for (const route of routes) {
    it(`${route.method} ${route.path().replace(room, ':id')}: documented status and error body`, async () => {
      await fc.assert(
        fc.asyncProperty(body, async (text) => {
          const res = await send(route.method, route.path(), text);
          expect(route.statuses, text.slice(0, 200)).toContain(res.status);
          if (res.status >= 400) {
            const json = (await res.json()) as { error?: unknown };
            expect(typeof json.error).toBe('string');
          } else {
            await res.arrayBuffer();
          }
        }),
        { numRuns: 150 },
      );
    });
  }

  it('then serves a normal flow: create, publish, close', async () => {
    const created = await send('PUT', '/webrtc/room', JSON.stringify({ user_id: 'alice' }));
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const pub = new NdcPublisher();
    try {
      expect((await pub.publish(t.url, id, 'alice')).status).toBe(200);
    } finally {
      pub.close();
    }
    expect((await send('DELETE', `/webrtc/room/${id}`, JSON.stringify({ user_id: 'alice' }))).status).toBe(
      204,
    );
  });
});
