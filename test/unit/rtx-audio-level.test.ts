import { describe, expect, it } from 'vitest';
import { unwrapRtx, wrapRtx, rtpHeaderLength } from '../../src/media/webrtc/rtx-packet.js';
import { AudioLevelMeter, amplitudeToDbov } from '../../src/media/webrtc/audio-level.js';
import {
  ActiveSpeakerDetector,
  DEFAULT_ACTIVE_SPEAKER,
} from '../../src/media/webrtc/active-speaker-detector.js';
import { keepOnlyCodec, parseSdp, writeSdp, type MediaSection } from '../../src/media/webrtc/sdp.js';
import { keptFor, readFeatures } from '../../src/media/webrtc/section-features.js';
import { setRedBlockTypes, writeRedPrimary } from '../../src/media/webrtc/red-packet.js';

/** An RTP packet with a one-byte-header extension block holding `ext` ([id, bytes]). */
function rtp(seq: number, pt: number, payload: Buffer, ext: Array<[number, number[]]> = []): Buffer {
  const elements = ext.flatMap(([id, data]) => [(id << 4) | (data.length - 1), ...data]);
  const words = Math.ceil(elements.length / 4);
  const header = Buffer.alloc(12 + (ext.length ? 4 + words * 4 : 0));
  header[0] = 0x80 | (ext.length ? 0x10 : 0);
  header[1] = pt;
  header.writeUInt16BE(seq, 2);
  header.writeUInt32BE(seq * 960, 4);
  header.writeUInt32BE(0x11112222, 8);
  if (ext.length) {
    header.writeUInt16BE(0xbede, 12);
    header.writeUInt16BE(words, 14);
    Buffer.from(elements).copy(header, 16);
  }
  return Buffer.concat([header, payload]);
}

describe('RTX packets (RFC 4588)', () => {
  it('wraps a packet with the OSN first and unwraps it to the same bytes', () => {
    const original = rtp(4242, 96, Buffer.from('frame data'), [[3, [1, 2, 3]]]);
    const scratch = Buffer.alloc(1600);
    const n = wrapRtx(original, scratch, 97, 0x5555, 7);
    const rtx = Buffer.from(scratch.subarray(0, n));
    expect(rtx.length).toBe(original.length + 2);
    expect(rtx[1]! & 0x7f).toBe(97);
    expect(rtx.readUInt16BE(2)).toBe(7);
    expect(rtx.readUInt32BE(8)).toBe(0x5555);
    expect(rtx.readUInt16BE(rtpHeaderLength(original))).toBe(4242);
    const back = unwrapRtx(rtx, 96, 0x11112222)!;
    expect(Buffer.compare(back, original)).toBe(0);
  });

  it('keeps the marker bit, and refuses malformed and padding-only packets', () => {
    const marked = rtp(1, 96 | 0x80, Buffer.from('x'));
    const scratch = Buffer.alloc(100);
    const n = wrapRtx(marked, scratch, 97, 9, 1);
    expect(scratch[1]).toBe(0x80 | 97);
    expect(unwrapRtx(Buffer.from(scratch.subarray(0, n)), 96, 1)![1]).toBe(0x80 | 96);
    expect(wrapRtx(rtp(1, 96, Buffer.alloc(200)), Buffer.alloc(100), 97, 9, 1)).toBe(0); // no room
    expect(unwrapRtx(Buffer.alloc(8), 96, 1)).toBeUndefined();
    const truncatedExt = rtp(1, 97, Buffer.alloc(0), [[1, [0]]]).subarray(0, 14);
    expect(unwrapRtx(truncatedExt, 96, 1)).toBeUndefined();
    // A bandwidth probe: OSN-less, padding only.
    const probe = rtp(5, 97, Buffer.from([0, 0, 0, 4]));
    probe[0]! |= 0x20;
    expect(unwrapRtx(probe, 96, 1)).toBeUndefined();
  });
});

describe('audio level (RFC 6464)', () => {
  it('reads the level of each packet and averages amplitudes between reads', () => {
    const m = new AudioLevelMeter(1);
    m.observe(rtp(1, 111, Buffer.alloc(20), [[1, [0x80 | 20]]])); // voice flag set: ignored
    m.observe(rtp(2, 111, Buffer.alloc(20), [[1, [40]]]));
    expect(m.lastDbov).toBe(40);
    expect(amplitudeToDbov(m.take())).toBeCloseTo(25.1, 0);
    expect(m.take()).toBe(0); // nothing since: silence
  });

  it('ignores packets without the extension, with another id, or malformed', () => {
    const m = new AudioLevelMeter(1);
    m.observe(rtp(1, 111, Buffer.alloc(20)));
    m.observe(rtp(2, 111, Buffer.alloc(20), [[2, [10]]]));
    m.observe(rtp(3, 111, Buffer.alloc(20), [[1, [10]]]).subarray(0, 15));
    m.observe(Buffer.alloc(3));
    expect(m.take()).toBe(0);
    expect(m.lastDbov).toBe(127);
  });
});

describe('ActiveSpeakerDetector', () => {
  const tick = DEFAULT_ACTIVE_SPEAKER.tickMs;
  const loud = 10 ** (-25 / 20);
  const quiet = 10 ** (-90 / 20);

  it('reports a loud participant after the minimum speaking time, not a quiet one', () => {
    const d = new ActiveSpeakerDetector();
    let t = 0;
    const levels = new Map([
      ['alice', loud],
      ['bob', quiet],
    ]);
    expect(d.update(levels, t)).toBeUndefined();
    let changed;
    while (!(changed = d.update(levels, (t += tick)))) expect(t).toBeLessThan(2000);
    expect(t).toBeGreaterThanOrEqual(DEFAULT_ACTIVE_SPEAKER.minSpeakMs);
    expect(changed.map((s) => s.participant)).toEqual(['alice']);
    expect(changed[0]!.level).toBeGreaterThan(0.03);
  });

  it('ignores a single loud tick, and keeps a speaker through pauses shorter than the hangover', () => {
    const d = new ActiveSpeakerDetector();
    let t = 0;
    d.update(new Map([['a', quiet]]), t);
    expect(d.update(new Map([['a', loud]]), (t += tick))).toBeUndefined(); // one click
    for (let i = 0; i < 10; i++) d.update(new Map([['a', quiet]]), (t += tick));
    expect(d.speakers()).toEqual([]);
    for (let i = 0; i < 5; i++) d.update(new Map([['a', loud]]), (t += tick));
    expect(d.speakers().map((s) => s.participant)).toEqual(['a']);
    // A 400 ms pause: still speaking.
    d.update(new Map([['a', 0]]), (t += tick));
    d.update(new Map([['a', 0]]), (t += tick));
    expect(d.speakers().map((s) => s.participant)).toEqual(['a']);
    // Silence past the hangover ends the turn, with one change.
    const changes: unknown[] = [];
    for (let i = 0; i < 20; i++) {
      const c = d.update(new Map([['a', 0]]), (t += tick));
      if (c) changes.push(c);
    }
    expect(changes).toEqual([[]]);
  });

  it('keeps the first speaker first until another is clearly louder; drops those who leave', () => {
    const d = new ActiveSpeakerDetector();
    let t = 0;
    const run = (levels: Record<string, number>, ticks: number) => {
      for (let i = 0; i < ticks; i++) d.update(new Map(Object.entries(levels)), (t += tick));
      return d.speakers().map((s) => s.participant);
    };
    expect(run({ a: loud, b: quiet }, 10)).toEqual(['a']);
    expect(run({ a: loud, b: loud * 1.1 }, 10)).toEqual(['a', 'b']); // under 3 dB louder
    expect(run({ a: loud, b: loud * 2 }, 10)).toEqual(['b', 'a']); // 6 dB louder
    expect(run({ a: loud }, 1)).toEqual(['a']);
    expect(run({}, 1)).toEqual([]);
  });

  it('takes levels that are not numbers in range as silence', () => {
    const d = new ActiveSpeakerDetector();
    for (let t = 0; t < 3000; t += tick)
      d.update(
        new Map([
          ['x', Number.NaN],
          ['y', -5],
        ]),
        t,
      );
    expect(d.speakers()).toEqual([]);
    for (let t = 3000; t < 6000; t += tick) d.update(new Map([['x', 7]]), t);
    expect(d.speakers()).toEqual([{ participant: 'x', level: 1 }]);
  });
});

describe('SDP: RTX and the audio level kept (#18)', () => {
  const offer = [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 0',
    'a=mid:0',
    'a=sendonly',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1',
    'a=rtpmap:63 red/48000/2',
    'a=fmtp:63 111/111',
    'a=rtpmap:0 PCMU/8000',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97 98',
    'a=mid:1',
    'a=sendonly',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=rtpmap:96 VP8/90000',
    'a=rtcp-fb:96 nack',
    'a=rtcp-fb:96 nack pli',
    'a=rtpmap:97 rtx/90000',
    'a=fmtp:97 apt=96',
    'a=rtpmap:98 VP9/90000',
    'a=ssrc-group:FID 1000 2000',
    'a=ssrc:1000 cname:x',
    'a=ssrc:2000 cname:x',
    '',
  ].join('\r\n');

  it('reads RTX, RED, NACK and the audio level id, and keeps them in the filtered offer', () => {
    const sdp = parseSdp(offer);
    const [audio, video] = sdp.media as [MediaSection, MediaSection];
    const fa = readFeatures(audio, 111);
    expect(fa).toEqual({ rtxPayloadType: undefined, redPayloadType: 63, nack: false, audioLevelId: 1 });
    const fv = readFeatures(video, 96);
    expect(fv).toEqual({
      rtxPayloadType: 97,
      redPayloadType: undefined,
      nack: true,
      audioLevelId: undefined,
    });
    keepOnlyCodec(audio, audio.codecs[0]!, keptFor(fa));
    keepOnlyCodec(video, video.codecs[0]!, keptFor(fv));
    const out = writeSdp(sdp);
    // RED kept and listed first (a browser sends RED only then); PCMU gone.
    expect(out).toContain('m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n');
    expect(out).toContain('a=fmtp:63 111/111');
    expect(out).toContain('a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level');
    expect(out).toContain('a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1'); // DTX passes
    expect(out).not.toContain('transport-cc');
    expect(out).toContain('m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n');
    expect(out).toContain('a=fmtp:97 apt=96');
    expect(out).toContain('a=ssrc:2000 cname:x');
    expect(out).not.toContain('ssrc-group'); // libdatachannel would echo it into its answer
    expect(out).not.toContain('sdes:mid');
    expect(out).not.toContain('VP9');
  });

  it('keeps nothing extra when the offer has no RTX for the chosen codec', () => {
    const sdp = parseSdp(offer.replace('a=fmtp:97 apt=96', 'a=fmtp:97 apt=98'));
    const video = sdp.media[1]!;
    const f = readFeatures(video, 96);
    expect(f.rtxPayloadType).toBeUndefined();
    keepOnlyCodec(video, video.codecs[0]!, keptFor(f));
    expect(writeSdp(sdp)).not.toMatch(/rtx|a=ssrc:2000/);
  });
});

describe('Opus RED (RFC 2198)', () => {
  /** A RED payload: one redundant block of `older` bytes, then the primary of `primary` bytes. */
  function red(older: number, primary: number): Buffer {
    const blocks = Buffer.alloc(5 + older + primary);
    blocks[0] = 0x80 | 111;
    blocks.writeUInt16BE((960 << 2) | (older >> 8), 1);
    blocks[3] = older & 0xff;
    blocks[4] = 111;
    blocks.fill(0xaa, 5, 5 + older);
    blocks.fill(0xbb, 5 + older);
    return rtp(9, 63, blocks, [[1, [30]]]);
  }

  it("rewrites every block's payload type, and extracts the primary as a plain packet", () => {
    const p = red(30, 40);
    expect(setRedBlockTypes(p, 109)).toBe(true);
    const payload = p.subarray(rtpHeaderLength(p));
    expect([payload[0], payload[4]]).toEqual([0x80 | 109, 109]);
    const scratch = Buffer.alloc(1500);
    const n = writeRedPrimary(p, scratch, 109);
    const primary = scratch.subarray(0, n);
    expect(primary[1]! & 0x7f).toBe(109);
    expect(primary.subarray(rtpHeaderLength(primary))).toEqual(Buffer.alloc(40, 0xbb));
    expect(primary.subarray(0, 12).readUInt16BE(2)).toBe(9);
    // A primary-only RED packet (no redundancy yet) works the same.
    const alone = rtp(10, 63, Buffer.concat([Buffer.from([111]), Buffer.alloc(7, 1)]));
    expect(scratch.subarray(0, writeRedPrimary(alone, scratch, 100)).subarray(12)).toEqual(
      Buffer.alloc(7, 1),
    );
  });

  it('refuses malformed RED: block lengths past the packet, no final header, no room', () => {
    const long = red(30, 40);
    long.writeUInt16BE((960 << 2) | 3, rtpHeaderLength(long) + 1); // a block of 3xx bytes
    expect(setRedBlockTypes(long, 109)).toBe(false);
    expect(writeRedPrimary(long, Buffer.alloc(1500), 109)).toBe(0);
    const headersOnly = rtp(1, 63, Buffer.from([0x80 | 111, 0, 0]));
    expect(setRedBlockTypes(headersOnly, 109)).toBe(false);
    expect(writeRedPrimary(red(30, 40), Buffer.alloc(20), 109)).toBe(0);
    expect(writeRedPrimary(Buffer.alloc(5), Buffer.alloc(100), 109)).toBe(0);
  });
});
