import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser, type SseClient } from '../fixtures/voip-client.js';

// Every VOIP route that reads a form, and the streaming upload routes, fed generated
// bodies: urlencoded and multipart forms (near-valid fields, file parts, too many parts,
// long fields), multipart cut short or with the wrong boundary, other content types,
// garbage. docs/voip.md: plain-text errors ending in a newline, 400 malformed, 403 failed
// authentication, 404 no such call or room, 409 a second stream, 413 an oversize form,
// 415 a content type that is not a form, 429 limits; never a 5xx, never a hang. Then
// a whole call runs as usual.

const FORM_ROUTES = [
  '/newCall',
  '/answer',
  '/answer2',
  '/acceptCall',
  '/rejectCall',
  '/endCall',
  '/listMembers',
  '/joinCall',
  '/joinRoom',
];
const UPLOAD_ROUTES = ['/upCall', '/upRoom'];
const DOCUMENTED = [200, 400, 403, 404, 409, 413, 415, 429];

let t: TestServer;
let user: KeyUser;
beforeAll(async () => {
  t = await startTestServer();
  user = new KeyUser(t.url);
});
afterAll(() => t.close());

const fieldName = fc.oneof(
  fc.constantFrom(
    'Destination',
    'From',
    'signature',
    'challenge',
    'PKey',
    'roomID',
    'otherID',
    'format',
    'token',
    'CSRFtoken',
    'rate',
    'channels',
    'Signature',
  ),
  fc.string({ maxLength: 20 }),
);
const fieldValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom('', '0', '-1', '1e999', 'opus', 'wav', 'abc', '02'.padEnd(66, '0')),
  fc.constant('x'.repeat(70 * 1024)),
);
const fields = fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 8 });

interface Part {
  name: string;
  value: Buffer;
  file?: { filename: string; type: string };
}
const part: fc.Arbitrary<Part> = fc.oneof(
  fc.tuple(fieldName, fieldValue).map(([name, v]) => ({ name, value: Buffer.from(v) })),
  fc
    .tuple(
      fieldName,
      fc.integer({ min: 0, max: 120_000 }),
      fc.string({ maxLength: 20 }),
      fc.string({ maxLength: 30 }),
    )
    .map(([name, size, filename, type]) => ({
      name,
      value: Buffer.alloc(size, 0x61),
      file: { filename, type },
    })),
);

/** A multipart body, maybe cut short, maybe declared with another boundary. */
const multipart = fc
  .tuple(
    fc.array(part, { maxLength: 14 }),
    fc.constantFrom('ok', 'cut', 'wrong-boundary', 'no-boundary', 'no-close'),
    fc.nat(),
  )
  .map(([parts, shape, cutAt]) => {
    const boundary = 'fuzzBoundary7MA4YWxk';
    const chunks: Buffer[] = [];
    for (const p of parts) {
      const disp = p.file
        ? `form-data; name="${p.name.replace(/["\r\n]/g, '')}"; filename="${p.file.filename.replace(/["\r\n]/g, '')}"\r\nContent-Type: ${p.file.type.replace(/[\r\n]/g, '') || 'application/octet-stream'}`
        : `form-data; name="${p.name.replace(/["\r\n]/g, '')}"`;
      chunks.push(
        Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n\r\n`),
        p.value,
        Buffer.from('\r\n'),
      );
    }
    if (shape !== 'no-close') chunks.push(Buffer.from(`--${boundary}--\r\n`));
    let body = Buffer.concat(chunks);
    if (shape === 'cut') body = body.subarray(0, cutAt % (body.length + 1));
    const type =
      shape === 'wrong-boundary'
        ? 'multipart/form-data; boundary=another'
        : shape === 'no-boundary'
          ? 'multipart/form-data'
          : `multipart/form-data; boundary=${boundary}`;
    return { type, body };
  });

/** Multipart as browsers and fetch send it (FormData, streamed by the client). */
const formData = fc.array(part, { maxLength: 8 }).map((parts) => {
  const fd = new FormData();
  for (const p of parts) {
    if (p.file)
      fd.append(p.name, new Blob([new Uint8Array(p.value)], { type: p.file.type }), p.file.filename || 'f');
    else fd.append(p.name, p.value.toString());
  }
  return { type: '', body: fd };
});

const urlencoded = fields.map((f) => ({
  type: 'application/x-www-form-urlencoded',
  body: Buffer.from(new URLSearchParams(f).toString()),
}));

const other = fc
  .tuple(
    fc.constantFrom(
      'application/json',
      'text/plain',
      '',
      'application/octet-stream',
      'multipart/mixed; boundary=x',
    ),
    fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b).toString('latin1')),
    ),
  )
  .map(([type, body]) => ({ type, body: Buffer.from(body, 'latin1') }));

const request = fc.record({
  route: fc.constantFrom(...FORM_ROUTES, ...UPLOAD_ROUTES),
  body: fc.oneof(
    { weight: 3, arbitrary: urlencoded },
    { weight: 3, arbitrary: multipart },
    { weight: 2, arbitrary: formData },
    { weight: 2, arbitrary: other },
  ),
  // Short: a query over Node's header limit is refused by Node itself (431).
  query: fc.option(
    fc
      .array(fc.tuple(fieldName, fc.string({ maxLength: 80 })), { maxLength: 6 })
      .map((f) => new URLSearchParams(f).toString()),
  ),
  pkey: fc.boolean(),
});

describe('VOIP forms and uploads, generated', () => {
  it('answers every generated request with a documented status, then runs a normal call', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.body.type) headers['content-type'] = r.body.type;
        if (r.pkey) headers.PKey = user.id;
        const res = await fetch(`${t.url}${r.route}${r.query ? `?${r.query}` : ''}`, {
          method: 'POST',
          headers,
          body: r.body.body instanceof FormData ? r.body.body : new Uint8Array(r.body.body),
          signal: AbortSignal.timeout(20_000),
        });
        const text = await res.text();
        expect(DOCUMENTED).toContain(res.status);
        if (res.status >= 400) expect(text.endsWith('\n')).toBe(true);
      }),
      { numRuns: 150 },
    );

    // A normal call afterwards: the handshake, accepted.
    const c = new KeyUser(t.url);
    const e = new KeyUser(t.url);
    const events: SseClient = await e.events();
    try {
      await c.getTicket();
      const rang = await c.post('/newCall', {
        Destination: e.id,
        challenge: 'c1',
        signature: c.sign(c.ticket),
      });
      expect(rang.status).toBe(200);
      await events.next('newCall');
      expect(
        (await e.post('/answer', { Destination: c.id, challenge: 'c2', signature: e.sign('c1') })).status,
      ).toBe(200);
      expect(
        (await c.post('/answer2', { Destination: e.id, challenge: 'c3', signature: c.sign('c2') })).status,
      ).toBe(200);
      expect((await e.post('/acceptCall', { From: c.id, signature: e.sign('c3') })).status).toBe(200);
      expect((await c.post('/endCall', { Destination: e.id })).status).toBe(200);
    } finally {
      events.close();
    }
  });
});
