import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { ChorusError } from '../../src/core/errors.js';
import { chooseCodec } from '../../src/media/webrtc/codec-policy.js';
import { guarded } from '../../src/media/webrtc/native-guard.js';
import {
  buildNack,
  buildPli,
  buildReceiverReport,
  findReceptionReport,
  forEachNackedSeq,
  isRtcp,
  wantsKeyframe,
} from '../../src/media/webrtc/rtp.js';
import {
  announceAddress,
  keepOnlyCodec,
  parseSdp,
  rejectSection,
  writeSdp,
} from '../../src/media/webrtc/sdp.js';

// The shape of a Chrome offer: many codecs, RTX, RED, FEC, header extensions, transport-cc.
const chromeOffer = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS s',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=sendonly',
  'a=rtcp-mux',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=ssrc:100 cname:x',
  'a=ssrc:100 msid:s a',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 102 116 117',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=sendonly',
  'a=rtcp-mux',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 goog-remb',
  'a=rtcp-fb:96 transport-cc',
  'a=rtcp-fb:96 ccm fir',
  'a=rtcp-fb:96 nack',
  'a=rtcp-fb:96 nack pli',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:98 VP9/90000',
  'a=fmtp:98 profile-id=0',
  'a=rtpmap:102 H264/90000',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtpmap:116 red/90000',
  'a=rtpmap:117 ulpfec/90000',
  'a=ssrc-group:FID 200 201',
  'a=ssrc:200 cname:x',
  'a=ssrc:200 msid:s v',
  'a=ssrc:201 cname:x',
  'a=ssrc:201 msid:s v',
  '',
].join('\r\n');

describe('SDP codec policy', () => {
  it('reads sections, codecs and directions', () => {
    const p = parseSdp(chromeOffer);
    expect(p.media.map((m) => [m.kind, m.mid, m.direction])).toEqual([
      ['audio', '0', 'sendonly'],
      ['video', '1', 'sendonly'],
    ]);
    expect(p.media[1]!.codecs.map((c) => c.name)).toEqual(['VP8', 'rtx', 'VP9', 'H264', 'red', 'ulpfec']);
  });

  it('chooses opus and VP8 (H.264 before VP9 without VP8), and matches a required codec', () => {
    const p = parseSdp(chromeOffer);
    expect(chooseCodec('audio', p.media[0]!.codecs)).toMatchObject({ name: 'opus', payloadType: 111 });
    expect(chooseCodec('video', p.media[1]!.codecs)).toMatchObject({ name: 'VP8', payloadType: 96 });
    const noVp8 = p.media[1]!.codecs.filter((c) => c.name !== 'VP8');
    expect(chooseCodec('video', noVp8)).toMatchObject({ name: 'H264', payloadType: 102 });
    const vp8 = chooseCodec('video', p.media[1]!.codecs)!;
    expect(chooseCodec('video', noVp8, vp8)).toBeUndefined();
    const high = noVp8.map((c) =>
      c.name === 'H264' ? { ...c, fmtp: 'packetization-mode=1;profile-level-id=640032' } : c,
    );
    // High profile is forwarded now (codecs are chosen per room, #18.5); H.264 Extended
    // (idc 0x58), which no browser sends, is not: VP9 is next.
    expect(chooseCodec('video', high)).toMatchObject({ name: 'H264', payloadType: 102 });
    const extended = noVp8.map((c) =>
      c.name === 'H264' ? { ...c, fmtp: 'packetization-mode=1;profile-level-id=580032' } : c,
    );
    expect(chooseCodec('video', extended)).toMatchObject({ name: 'VP9', payloadType: 98 });
  });

  it('keeps only the chosen codec: no RTX, RED, FEC, header extensions, transport-cc or RTX SSRCs', () => {
    const p = parseSdp(chromeOffer);
    const v = p.media[1]!;
    keepOnlyCodec(v, v.codecs[0]!);
    const text = writeSdp(p);
    const video = text.slice(text.indexOf('m=video'));
    expect(video.split('\r\n')[0]).toBe('m=video 9 UDP/TLS/RTP/SAVPF 96');
    expect(video).not.toMatch(/rtx|VP9|H264|red|ulpfec|extmap|transport-cc|ssrc-group|a=ssrc:201/);
    expect(video).toMatch(/a=rtcp-fb:96 nack pli/);
    expect(video).toMatch(/a=ssrc:200 msid:s v/);
    rejectSection(p.media[0]!);
    expect(writeSdp(p)).toMatch(/^m=audio 0 /m);
  });

  it('rejects what is not SDP', () => {
    expect(() => parseSdp('hello')).toThrow(ChorusError);
    expect(() => parseSdp('hello')).toThrow(expect.objectContaining({ code: 'invalid_sdp' }));
    expect(() => parseSdp('v=0\r\ns=-\r\n')).toThrow(/no media/);
  });

  it('announces an external address in host candidates', () => {
    const sdp =
      'm=audio 5000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 10.0.0.5\r\na=candidate:1 1 UDP 2122317823 10.0.0.5 7882 typ host\r\n';
    const out = announceAddress(sdp, '203.0.113.7');
    expect(out).toMatch(/a=candidate:1 1 UDP 2122317823 203\.0\.113\.7 7882 typ host/);
    expect(out).toMatch(/c=IN IP4 203\.0\.113\.7/);
  });
});

describe('RTP helpers', () => {
  it('tells RTCP from RTP and finds keyframe requests in compound packets', () => {
    const rtp = Buffer.from([0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    const rr = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]);
    expect(isRtcp(rtp)).toBe(false);
    expect(isRtcp(rr)).toBe(true);
    expect(wantsKeyframe(Buffer.concat([rr, buildPli(1, 2)]))).toBe(true);
    expect(wantsKeyframe(Buffer.concat([rr, buildNack(1, 2, 3)]))).toBe(false);
    const fir = buildPli(1, 2);
    fir[0] = 0x84;
    expect(wantsKeyframe(fir)).toBe(true);
  });

  it("reads a stream's report block from the SRs and RRs of a compound packet", () => {
    const rr = buildReceiverReport(9, 1111, { fractionLost: 0.25, cumulativeLost: -3, jitter: 900 });
    // An SR (sender info, then two blocks) whose second block is about 2222.
    const sr = Buffer.alloc(28 + 48);
    sr[0] = 0x82;
    sr[1] = 200;
    sr.writeUInt16BE(sr.length / 4 - 1, 2);
    sr.writeUInt32BE(9, 4);
    sr.writeUInt32BE(3333, 28);
    sr.writeUInt32BE(2222, 52);
    sr[56] = 128;
    sr.writeIntBE(40, 57, 3);
    sr.writeUInt32BE(480, 64);
    const out = { fractionLost: 0, cumulativeLost: 0, jitter: 0 };
    const compound = Buffer.concat([sr, rr, buildPli(9, 1111)]);
    expect(findReceptionReport(compound, 1111, out)).toBe(true);
    expect(out).toEqual({ fractionLost: 0.25, cumulativeLost: -3, jitter: 900 });
    expect(findReceptionReport(compound, 2222, out)).toBe(true);
    expect(out).toEqual({ fractionLost: 0.5, cumulativeLost: 40, jitter: 480 });
    expect(findReceptionReport(compound, 4444, out)).toBe(false);
    // A report count larger than the packet holds is read no further than the packet.
    const lying = Buffer.from(rr);
    lying[0] = 0x9f;
    expect(findReceptionReport(lying.subarray(0, 20), 1111, out)).toBe(false);
  });

  it('lists the sequence numbers of every NACK in a compound packet, bitmasks and wrap included', () => {
    const rr = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]);
    // A NACK with two FCIs: 100 (+102, +116 by bitmask) and 65535 (+0 by bitmask, wrapping).
    const two = Buffer.alloc(20);
    buildNack(1, 2, 100, (1 << 1) | (1 << 15)).copy(two);
    two.writeUInt16BE(4, 2);
    two.writeUInt16BE(65535, 16);
    two.writeUInt16BE(1, 18);
    const seen: number[] = [];
    // And a NACK for another stream (SSRC 3), which is not this history's to answer.
    const other = buildNack(1, 3, 500);
    forEachNackedSeq(Buffer.concat([rr, buildPli(1, 2), two, other]), 2, (s) => seen.push(s));
    expect(seen).toEqual([100, 102, 116, 65535, 0]);
    const forOther: number[] = [];
    forEachNackedSeq(Buffer.concat([two, other]), 3, (s) => forOther.push(s));
    expect(forOther).toEqual([500]);
    // A length field past the end is cut at the end, not read beyond it.
    const bad = buildNack(1, 2, 7);
    bad.writeUInt16BE(200, 2);
    const got: number[] = [];
    forEachNackedSeq(bad, 2, (s) => got.push(s));
    expect(got).toEqual([7]);
  });
});

describe('native callback guard', () => {
  it('catches, logs and tears down the peer instead of letting the error reach native code', () => {
    const log = pino({ level: 'silent' });
    const teardown = vi.fn();
    const fn = guarded(log, 'onMessage', teardown, () => {
      throw new Error('boom');
    });
    expect(() => fn()).not.toThrow();
    expect(teardown).toHaveBeenCalledOnce();
    const alsoFails = guarded(
      log,
      'x',
      () => {
        throw new Error('teardown failed too');
      },
      () => {
        throw new Error('boom');
      },
    );
    expect(() => alsoFails()).not.toThrow();
  });
});
