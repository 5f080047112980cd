import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { PeerConnection } from 'node-datachannel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSdp } from '../../src/media/webrtc/sdp.js';
import { sdpProblem } from '../../src/media/webrtc/sdp-validation.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

// SDP offers from clients: mutations of a real offer through the validator, through
// libdatachannel when the validator lets them pass, and a bounded number through the
// real Blue Sky route (never a 500).

/** A libdatachannel publisher's offer (video VP8 + RTX + RED, audio Opus). */
const OFFER = [
  'v=0',
  'o=rtc 1700686322 0 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE video audio',
  'a=group:LS video audio',
  'a=msid-semantic:WMS *',
  'a=ice-options:ice2,trickle',
  'a=fingerprint:sha-256 C4:CC:55:8D:AB:CB:DF:06:12:89:96:56:6B:4D:45:E7:5C:4B:0C:0A:E9:D7:F0:6F:7F:01:5B:B1:7D:0B:6B:1A',
  'm=video 35213 UDP/TLS/RTP/SAVPF 96 97 98',
  'c=IN IP4 127.0.0.1',
  'a=mid:video',
  'a=sendonly',
  'a=ssrc:1111 cname:pub',
  'a=ssrc:1111 msid:pubstream pubvideo',
  'a=msid:pubstream pubvideo',
  'a=rtcp-mux',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 nack',
  'a=rtcp-fb:96 nack pli',
  'a=rtpmap:97 RTX/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:98 red/90000',
  'a=setup:actpass',
  'a=ice-ufrag:chLJ',
  'a=ice-pwd:IkEc/kIKxAGm9ZB+u7HFnM',
  'a=candidate:1 1 UDP 2114977791 127.0.0.1 35213 typ host',
  'a=end-of-candidates',
  'm=audio 35213 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 127.0.0.1',
  'a=mid:audio',
  'a=sendonly',
  'a=ssrc:2222 cname:pub',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=setup:actpass',
  'a=ice-ufrag:chLJ',
  'a=ice-pwd:IkEc/kIKxAGm9ZB+u7HFnM',
].join('\r\n');
const LINES = OFFER.split('\r\n');

const hugeNumber = fc.oneof(
  fc.constantFrom('4294967296', '99999999999', '-1', '1e9', '0x10', '', ' ', '9'.repeat(40), 'NaN'),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
);
const token = fc.oneof(
  hugeNumber,
  fc.string({ maxLength: 12 }),
  fc.constantFrom('ZZ:11', 'sha-256', 'typ', 'host', 'udp'),
);

/** One edit of a line: a field replaced, the line cut short, or garbled. */
const lineEdit = fc.oneof(
  fc.tuple(fc.nat(), token).map(([i, t]) => (l: string) => {
    const f = l.split(' ');
    f[i % f.length] = f[i % f.length]!.replace(/[^:=]*$/, t);
    return f.join(' ');
  }),
  fc.nat().map((n) => (l: string) => l.slice(0, n % (l.length + 1))),
  fc.string({ maxLength: 20 }).map((s) => (l: string) => l + s),
  fc.nat(200).map((n) => (l: string) => l + ' x'.repeat(n)),
);

/** An offer mutated line by line: dropped, duplicated, edited, garbage inserted. */
const mutatedOffer = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constant('drop' as const), fc.nat()),
      fc.tuple(fc.constant('dup' as const), fc.nat()),
      fc.tuple(fc.constant('edit' as const), fc.nat(), lineEdit),
      fc.tuple(fc.constant('insert' as const), fc.nat(), fc.string({ maxLength: 80 })),
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((ops) => {
    const lines = [...LINES];
    for (const op of ops) {
      const i = op[1] % lines.length;
      if (op[0] === 'drop' && lines.length > 1) lines.splice(i, 1);
      else if (op[0] === 'dup') lines.splice(i, 0, lines[i]!);
      else if (op[0] === 'edit') lines[i] = op[2](lines[i]!);
      else if (op[0] === 'insert') lines.splice(i, 0, op[2]);
    }
    return lines.join('\r\n') + '\r\n';
  });

const anySdp = fc.oneof(
  { weight: 6, arbitrary: mutatedOffer },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }).map((s) => `v=0\r\n${s}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
);

describe('SDP validator (fuzz)', () => {
  it('accepts the real offer', () => {
    expect(sdpProblem(OFFER)).toBeUndefined();
  });

  it('answers every input with a short problem or a pass, and what passes parses and is taken or refused by libdatachannel without a crash', () => {
    let passed = 0;
    fc.assert(
      fc.property(anySdp, (sdp) => {
        const problem = sdpProblem(sdp);
        if (problem !== undefined) {
          expect(typeof problem).toBe('string');
          expect(problem.length).toBeLessThan(300);
          return;
        }
        passed++;
        expect(() => parseSdp(sdp)).not.toThrow();
        // What the validator lets through reaches libdatachannel: it may refuse (a JS
        // exception, mapped to 400 by the SFU), it must not abort the process.
        const pc = new PeerConnection('fuzz', { iceServers: [], disableAutoNegotiation: true });
        try {
          pc.setRemoteDescription(sdp, 'offer');
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        } finally {
          pc.close();
        }
      }),
      { numRuns: 300 },
    );
    // Mutations that keep the offer valid (a dropped a=msid, a duplicated candidate) exist.
    expect(passed).toBeGreaterThan(0);
  });
});

describe('SDP through the Blue Sky route (fuzz)', () => {
  let t: TestServer;
  let room: string;
  beforeAll(async () => {
    t = await startTestServer({ webrtc: { bindAddress: '127.0.0.1' } });
    const res = await fetch(`${t.url}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'fuzz' }),
    });
    room = ((await res.json()) as { id: string }).id;
  });
  afterAll(async () => {
    await t.close();
  });

  it('never answers 500, and a normal client is served after', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedOffer, fc.boolean(), async (sdp, sender) => {
        // A fresh user each time: a second publish would replace the first leg anyway.
        const user = `u${n++}`;
        const res = await fetch(`${t.url}/webrtc/sdp/m/${room}/c/${user}/p/${user}/s/${sender}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            sdp: gzipSync(Buffer.from(JSON.stringify({ type: 'offer', sdp }))).toString('base64'),
          }),
        });
        const body = (await res.json()) as { error?: unknown; sdp?: unknown };
        // 404: a receiver of a user who does not publish.
        expect([200, 400, 404]).toContain(res.status);
        if (res.status !== 200) expect(typeof body.error).toBe('string');
      }),
      { numRuns: 60 },
    );
    const pub = new NdcPublisher();
    try {
      const r = await pub.publish(t.url, room, 'after-fuzz');
      expect(r.status).toBe(200);
    } finally {
      pub.close();
    }
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });
});
