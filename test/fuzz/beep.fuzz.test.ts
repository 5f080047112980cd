import wrtc from '@roamhq/wrtc';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BeepVoiceClient } from '../fixtures/beep-client.js';
import { FakePermissions } from '../fixtures/fake-permissions.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket } from '../fixtures/ws-client.js';

// Beep's inputs, generated: `X-User-Claim` headers and `?token=` values on its routes,
// and frames on `/connect` (bare and tagged SDP, mutated real offers, garbage, binary,
// invalid UTF-8, oversize). docs/beep.md is the oracle: 400/401/403 with its texts
// before the upgrade; after it an answer, or a close with 1007 (bad offer) or 1009 (too
// big). Afterwards a normal Beep client still connects.

const SECRET = 'a-fuzz-secret-of-some-length';
const MAX_LIFETIME = 3600;
const perms = new FakePermissions();
let t: TestServer;
let untrusted: TestServer;
/** A real browser-like offer (libwebrtc), the seed for mutated ones. */
let offer: string;

beforeAll(async () => {
  await perms.start();
  perms.allow('fuzz-user', 'room');
  const beep = {
    tokenSecret: SECRET,
    tokenMaxLifetimeSeconds: MAX_LIFETIME,
    permissionsHost: perms.url,
    permissionsTimeoutMs: 2000,
  };
  t = await startTestServer({ beep, webrtc: { bindAddress: '127.0.0.1' } });
  // The same, but loopback is no trusted proxy: a claim header is refused with 403.
  untrusted = await startTestServer({
    beep: { ...beep, trustedProxies: ['10.9.9.9'] },
    webrtc: { bindAddress: '127.0.0.1' },
  });
  const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('audio', { direction: 'sendrecv' });
  offer = (await pc.createOffer()).sdp!;
  pc.close();
});
afterAll(async () => {
  await Promise.all([t.close(), untrusted.close()]);
  await perms.stop();
});

// --- claims -------------------------------------------------------------------------

/** Header values must be ASCII-safe for fetch: escape the rest as JSON does. */
const asciiJson = (v: unknown) =>
  (JSON.stringify(v) ?? 'null').replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
const ID = /^[^\p{Cc}/]{1,256}$/u;
const validId = (v: unknown) => typeof v === 'string' && ID.test(v);

const id = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('fuzz-user', 'phone', 'déjà-vu') },
  fc.constantFrom(
    'fuzz-user',
    'phone',
    '',
    'a/b',
    'x'.repeat(256),
    'x'.repeat(257),
    'tab\there',
    'nul\u0000',
  ),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.jsonValue({ maxDepth: 1 }),
);

type Header = { raw: string | undefined; claim: unknown };
const header: fc.Arbitrary<Header> = fc.oneof(
  fc.constant<Header>({ raw: undefined, claim: undefined }),
  fc
    .record({ userid: id, clientid: id }, { requiredKeys: [] })
    .map((c): Header => ({ raw: asciiJson(c), claim: c })),
  fc.jsonValue({ maxDepth: 2 }).map((v): Header => ({ raw: asciiJson(v), claim: v })),
  // Printable ASCII that is mostly not JSON.
  fc
    .string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 })
    .map((s): Header => ({ raw: s, claim: parsed(s) })),
);
function parsed(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return Symbol('not JSON');
  }
}

const now = () => Math.floor(Date.now() / 1000);
type Token = { value: string | undefined; valid: boolean };
type PlannedToken =
  | { kind: 'raw'; value: string | undefined }
  | { kind: 'jwt'; claims: Record<string, unknown>; expIn: unknown; rightKey: boolean; cut: boolean };
const key = new TextEncoder().encode(SECRET);
const plannedToken: fc.Arbitrary<PlannedToken> = fc.oneof(
  fc
    .oneof(
      fc.constantFrom(undefined, ''),
      fc.string({ maxLength: 60 }),
      fc
        .tuple(fc.base64String({ maxLength: 40 }), fc.base64String({ maxLength: 40 }), fc.base64String())
        .map(([a, b, c]) => `${a}.${b}.${c}`),
    )
    .map((value): PlannedToken => ({ kind: 'raw', value })),
  // Signed tokens with generated claims and times (seconds from now, or not a number).
  fc
    .record({
      userid: id,
      clientid: id,
      expIn: fc.constantFrom<unknown>(undefined, -100, 600, MAX_LIFETIME - 60, MAX_LIFETIME + 600, 'soon'),
      rightKey: fc.boolean(),
      cut: fc.boolean(),
    })
    .map(({ userid, clientid, expIn, rightKey, cut }): PlannedToken => ({
      kind: 'jwt',
      claims: { userid, clientid },
      expIn,
      rightKey,
      cut,
    })),
);

/** Signs what was planned, and judges it by the doc's rules. */
async function tokenOf(p: PlannedToken): Promise<Token> {
  if (p.kind === 'raw') return { value: p.value, valid: false };
  const claims = { ...p.claims };
  if (p.expIn !== undefined) claims.exp = typeof p.expIn === 'number' ? now() + p.expIn : p.expIn;
  const signed = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .sign(p.rightKey ? key : new TextEncoder().encode('another-secret-entirely-here'));
  const valid =
    p.rightKey &&
    !p.cut &&
    typeof p.expIn === 'number' &&
    p.expIn > 0 &&
    p.expIn <= MAX_LIFETIME &&
    validId(p.claims.userid) &&
    validId(p.claims.clientid);
  return { value: p.cut ? signed.slice(0, -3) : signed, valid };
}

/** docs/beep.md: the status and text a claim gets, for a route that then answers `ok`. */
function expectedClaim(
  h: Header,
  tk: Token,
  trusted: boolean,
  ok: number,
): { status: number; text?: RegExp } {
  if (tk.value) return tk.valid ? { status: ok } : { status: 401, text: /^invalid token/ };
  if (h.raw === undefined || h.raw.trim() === '')
    return { status: 400, text: /^Error parsing X-User-Claims header$/ };
  if (!trusted) return { status: 403, text: /not accepted from this address/ };
  const c = h.claim as Record<string, unknown> | undefined;
  const valid = !!c && typeof c === 'object' && validId(c.userid) && validId(c.clientid);
  return valid ? { status: ok } : { status: 400, text: /^Error parsing X-User-Claims header$/ };
}

function requestOf(server: TestServer, path: string, h: Header, tk: Token) {
  const url = new URL(`${server.url}${path}`);
  if (tk.value !== undefined) url.searchParams.set('token', tk.value);
  const headers: Record<string, string> = {};
  if (h.raw !== undefined) headers['X-User-Claim'] = h.raw;
  return { url: url.toString(), headers };
}

describe('Beep claims: generated X-User-Claim headers and ?token= values', () => {
  it('get the documented status and text on every route, trusted proxy or not', async () => {
    await fc.assert(
      fc.asyncProperty(header, plannedToken, fc.boolean(), async (h, planned, fromTrusted) => {
        const tk = await tokenOf(planned);
        const server = fromTrusted ? t : untrusted;
        // /conversation answers 200 to any caller; /join asks permissions, which allow only
        // fuzz-user in `room`, so a valid caller gets 200 or 401 there.
        const conv = requestOf(server, '/conversation/room', h, tk);
        const want = expectedClaim(h, tk, fromTrusted, 200);
        const res = await fetch(conv.url, { headers: conv.headers });
        const text = await res.text();
        expect(res.status, text).toBe(want.status);
        if (want.text) expect(text).toMatch(want.text);
        else expect(JSON.parse(text)).toEqual({ members: expect.any(Number) as number });

        const join = requestOf(server, '/join/room', h, tk);
        const joined = await fetch(join.url, { method: 'POST', headers: join.headers });
        const joinText = await joined.text();
        if (want.text)
          expect([joined.status, joinText]).toEqual([want.status, expect.stringMatching(want.text)]);
        else expect([200, 401]).toContain(joined.status);

        // The upgrade is refused the same way before any WebSocket exists.
        if (want.text) {
          const ws = requestOf(server, '/connect', h, tk);
          const refused = await TestSocket.refusal(ws.url.replace(/^http/, 'ws'), ws.headers);
          expect(refused.status).toBe(want.status);
          expect(refused.body).toMatch(want.text);
        }
      }),
      { numRuns: 150 },
    );
  }, 60_000);
});

// --- frames -------------------------------------------------------------------------

type Frame = { data: string | Buffer; binary: boolean };
/** Frames built around `offer`, a real one (known only once the suite has started). */
function frames(offer: string): fc.Arbitrary<Frame> {
  const lines = () => offer.split('\r\n').filter((l) => l !== '');
  const mutated = fc.oneof(
    fc.constant(offer),
    fc.nat().map((n) => offer.slice(0, n % offer.length)),
    fc.nat().map((n) => {
      const ls = lines();
      ls.splice(n % ls.length, 1);
      return ls.join('\r\n') + '\r\n';
    }),
    fc.tuple(fc.nat(), fc.string({ maxLength: 80 })).map(([n, s]) => {
      const ls = lines();
      ls[n % ls.length] = s;
      return ls.join('\r\n') + '\r\n';
    }),
    fc.tuple(fc.nat(), fc.string({ unit: 'binary', maxLength: 80 })).map(([n, s]) => {
      const ls = lines();
      ls.splice(n % ls.length, 0, `a=${s}`);
      return ls.join('\r\n') + '\r\n';
    }),
    fc.constant(offer.replace(/opus/gi, 'nopus')),
    fc.constant(offer.replace(/a=fingerprint:.*\r\n/, 'a=fingerprint:sha-256 zz\r\n')),
    fc.constant(offer + `a=x:${'x'.repeat(200_000)}\r\n`),
  );
  return fc.oneof(
    { weight: 4, arbitrary: mutated.map((s): Frame => ({ data: s, binary: false })) },
    { weight: 2, arbitrary: mutated.map((s): Frame => ({ data: `offer::${s}`, binary: false })) },
    {
      weight: 2,
      arbitrary: fc
        .string({ unit: 'binary', maxLength: 300 })
        .map((s): Frame => ({ data: s, binary: false })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/), fc.string({ maxLength: 100 }))
        .map(([tag, rest]): Frame => ({ data: `${tag}::${rest}`, binary: false })),
    },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 300 })
        .map((b): Frame => ({ data: Buffer.from(b), binary: true })),
    },
    // Text frames whose bytes are not UTF-8.
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(Buffer.from([0xc3, 0x28]), Buffer.from([0xff, 0xfe, 0x00]))
        .map((b): Frame => ({ data: b, binary: false })),
    },
    { weight: 1, arbitrary: fc.constant<Frame>({ data: 'v'.repeat(300 * 1024), binary: false }) },
  );
}

/** What the server does next: sends an answer, or closes. */
function outcome(ws: WebSocket): Promise<{ answer?: string; code?: number; reason?: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer and no close within 15 s')), 15_000);
    ws.once('message', (d: Buffer) => {
      clearTimeout(timer);
      resolve({ answer: d.toString() });
    });
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

const claim = { 'X-User-Claim': JSON.stringify({ userid: 'frame-fuzzer', clientid: 'fuzz' }) };

describe('Beep /connect: generated frames', () => {
  it('answer, or close with the documented code; never a server failure', async () => {
    const seen = { answers: 0, closes: 0 };
    await fc.assert(
      fc.asyncProperty(frames(offer), async (f) => {
        const ws = new WebSocket(`${t.wsUrl}/connect`, { headers: claim });
        ws.on('error', () => undefined);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('unexpected-response', (_q, r) => reject(new Error(`upgrade refused ${r.statusCode}`)));
        });
        const next = outcome(ws);
        ws.send(f.data, { binary: f.binary });
        const text = typeof f.data === 'string' ? f.data : undefined;
        const bytes = typeof f.data === 'string' ? Buffer.byteLength(f.data) : f.data.length;
        const tag = text && /^([A-Za-z0-9_-]{1,32})::/.exec(text);
        let result;
        if (tag && tag[1] !== 'offer' && bytes <= 256 * 1024) {
          // A tagged frame before the offer is ignored; the socket still takes an offer.
          ws.send('not an offer');
          result = await next;
          expect(result.code).toBe(1007);
        } else {
          result = await next;
          if (bytes > 256 * 1024) expect(result.code).toBe(1009);
          else if (f.binary || text === undefined) expect(result.code).toBe(1007);
          else if (result.answer !== undefined) {
            expect(result.answer).toMatch(tag ? /^answer::v=0\r\n/ : /^v=0\r\n/);
          } else expect(result.code, result.reason).toBe(1007);
        }
        if (result.answer !== undefined) seen.answers++;
        else seen.closes++;
        ws.close();
      }),
      { numRuns: 120 },
    );
    // The generator reached both sides of the oracle.
    expect(seen.answers).toBeGreaterThan(0);
    expect(seen.closes).toBeGreaterThan(0);
  }, 120_000);

  it('then a normal Beep client still connects', async () => {
    const client = new BeepVoiceClient(440);
    try {
      await client.connect(`${t.wsUrl}/connect`, 'bare', {
        'X-User-Claim': JSON.stringify({ userid: 'fuzz-user', clientid: 'after' }),
      });
      expect(client.pc.connectionState).toBe('connected');
    } finally {
      client.close();
    }
  }, 30_000);
});
