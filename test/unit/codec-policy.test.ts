import { describe, expect, it } from 'vitest';
import { chooseCodec, sameFormat, type CodecChoice } from '../../src/media/webrtc/codec-policy.js';
import { isKeyframe, rtpPayloadOffset } from '../../src/media/webrtc/keyframe.js';
import type { RtpCodec } from '../../src/media/webrtc/sdp.js';

/** What Chromium 156 offers for sending video (RTCRtpSender.getCapabilities), with its payload types. */
const h264 = (pt: number, fmtp: string): RtpCodec => ({
  payloadType: pt,
  name: 'H264',
  clockRate: 90000,
  channels: undefined,
  fmtp: `level-asymmetry-allowed=1;${fmtp}`,
});
const chromium: RtpCodec[] = [
  { payloadType: 96, name: 'VP8', clockRate: 90000, channels: undefined, fmtp: undefined },
  { payloadType: 97, name: 'rtx', clockRate: 90000, channels: undefined, fmtp: 'apt=96' },
  h264(103, 'packetization-mode=1;profile-level-id=42001f'),
  h264(107, 'packetization-mode=0;profile-level-id=42001f'),
  h264(109, 'packetization-mode=1;profile-level-id=42e01f'),
  h264(114, 'packetization-mode=0;profile-level-id=42e01f'),
  h264(117, 'packetization-mode=1;profile-level-id=4d001f'),
  h264(119, 'packetization-mode=0;profile-level-id=4d001f'),
  {
    payloadType: 45,
    name: 'AV1',
    clockRate: 90000,
    channels: undefined,
    fmtp: 'level-idx=5;profile=0;tier=0',
  },
  { payloadType: 98, name: 'VP9', clockRate: 90000, channels: undefined, fmtp: 'profile-id=0' },
  { payloadType: 100, name: 'VP9', clockRate: 90000, channels: undefined, fmtp: 'profile-id=2' },
  { payloadType: 39, name: 'red', clockRate: 90000, channels: undefined, fmtp: undefined },
];

describe('the room codec policy', () => {
  it('chooses by the server preference, each codec in its most decodable format', () => {
    expect(chooseCodec('video', chromium)).toMatchObject({ name: 'VP8', payloadType: 96 });
    // H.264: constrained baseline in packetization mode 1, though plain baseline comes first.
    expect(chooseCodec('video', chromium, undefined, ['H264'])).toMatchObject({ payloadType: 109 });
    expect(chooseCodec('video', chromium, undefined, ['VP9', 'VP8'])).toMatchObject({
      name: 'VP9',
      payloadType: 98,
    });
    expect(chooseCodec('video', chromium, undefined, ['AV1'])).toMatchObject({
      name: 'AV1',
      payloadType: 45,
    });
    // A codec left out of the preference is never chosen.
    expect(chooseCodec('video', chromium.slice(2), undefined, ['VP8'])).toBeUndefined();
  });

  it('matches a required format on the parameters that change the bitstream, not the level or payload type', () => {
    const room: CodecChoice = {
      kind: 'video',
      name: 'H264',
      payloadType: 126,
      clockRate: 90000,
      fmtp: 'profile-level-id=42e034;packetization-mode=1',
    };
    // Same profile (constrained baseline), other level and payload type: 109.
    expect(chooseCodec('video', chromium, room)).toMatchObject({ payloadType: 109 });
    // 4d with constraint_set1 is constrained baseline too (RFC 6184 8.1, as libwebrtc reads it).
    expect(sameFormat(h264(1, 'packetization-mode=1;profile-level-id=4de01f'), room)).toBe(true);
    expect(sameFormat(h264(1, 'packetization-mode=0;profile-level-id=42e01f'), room)).toBe(false);
    expect(sameFormat(h264(1, 'packetization-mode=1;profile-level-id=640c1f'), room)).toBe(false);
    const main = { ...room, fmtp: 'profile-level-id=4d0032;packetization-mode=1' };
    expect(chooseCodec('video', chromium, main)).toMatchObject({ payloadType: 117 });
    const high = { ...room, fmtp: 'profile-level-id=640c1f;packetization-mode=1' };
    expect(chooseCodec('video', chromium, high)).toBeUndefined();
    const vp9p2: CodecChoice = {
      kind: 'video',
      name: 'VP9',
      payloadType: 101,
      clockRate: 90000,
      fmtp: 'profile-id=2',
    };
    expect(chooseCodec('video', chromium, vp9p2)).toMatchObject({ payloadType: 100 });
    const av1p1: CodecChoice = {
      kind: 'video',
      name: 'AV1',
      payloadType: 35,
      clockRate: 90000,
      fmtp: 'profile=1',
    };
    expect(chooseCodec('video', chromium, av1p1)).toBeUndefined();
    // Garbage parameters match nothing rather than throwing.
    expect(chooseCodec('video', [h264(1, 'profile-level-id=zz;packetization-mode=1')])).toBeUndefined();
  });
});

/** An RTP packet: 12-byte header (with `csrcs` CSRCs and an optional extension block), then `payload`. */
function rtp(payload: number[], opts: { csrcs?: number; extensionWords?: number } = {}): Buffer {
  const csrcs = opts.csrcs ?? 0;
  const ext = opts.extensionWords;
  const header = Buffer.alloc(12 + csrcs * 4 + (ext === undefined ? 0 : 4 + ext * 4));
  header[0] = 0x80 | (ext === undefined ? 0 : 0x10) | csrcs;
  header[1] = 96;
  if (ext !== undefined) {
    header.writeUInt16BE(0xbede, 12 + csrcs * 4);
    header.writeUInt16BE(ext, 14 + csrcs * 4);
  }
  return Buffer.concat([header, Buffer.from(payload)]);
}

describe('keyframe detection per codec', () => {
  it('finds the payload after CSRCs and header extensions, and refuses truncated headers', () => {
    expect(rtpPayloadOffset(rtp([1], { csrcs: 2, extensionWords: 1 }))).toBe(12 + 8 + 8);
    expect(rtpPayloadOffset(rtp([], { extensionWords: 3 }).subarray(0, 20))).toBe(-1);
    expect(rtpPayloadOffset(Buffer.alloc(5))).toBe(-1);
    expect(isKeyframe('VP8', Buffer.alloc(12))).toBe(false);
  });

  it('VP8: start of partition 0 with the P bit clear, past the extended descriptor', () => {
    // X=1, S=1, PID=0; I=1 with a 15-bit picture id, L=1, T=1; then the frame tag.
    expect(isKeyframe('VP8', rtp([0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x10], { extensionWords: 2 }))).toBe(
      true,
    );
    expect(isKeyframe('VP8', rtp([0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x11]))).toBe(false); // inter frame
    expect(isKeyframe('VP8', rtp([0x10, 0x10]))).toBe(true); // minimal descriptor
    expect(isKeyframe('VP8', rtp([0x00, 0x10]))).toBe(false); // not a partition start
    expect(isKeyframe('VP8', rtp([0x90, 0x80]))).toBe(false); // truncated
  });

  it('VP9: a frame start, not inter-predicted, on the base spatial layer', () => {
    // I=1 (7-bit picture id), B=1, P=0, no layer indices.
    expect(isKeyframe('VP9', rtp([0x88, 0x12, 0x00]))).toBe(true);
    expect(isKeyframe('VP9', rtp([0xc8, 0x12]))).toBe(false); // P=1
    expect(isKeyframe('VP9', rtp([0x80, 0x12]))).toBe(false); // not a frame start
    // L=1 (SVC), 15-bit picture id: SID 0 is where decoding starts, SID 1 is not.
    expect(isKeyframe('VP9', rtp([0xa8, 0x80, 0x01, 0x00, 0x00]))).toBe(true);
    expect(isKeyframe('VP9', rtp([0xa8, 0x80, 0x01, 0x02, 0x00]))).toBe(false);
  });

  it('H.264: IDR or SPS, single, aggregated (STAP-A) or the first fragment (FU-A)', () => {
    expect(isKeyframe('H264', rtp([0x65, 0x88]))).toBe(true); // IDR
    expect(isKeyframe('H264', rtp([0x67, 0x42]))).toBe(true); // SPS
    expect(isKeyframe('H264', rtp([0x41, 0x9a]))).toBe(false); // non-IDR slice
    // STAP-A: an SEI (6) then an SPS (7).
    expect(isKeyframe('H264', rtp([0x78, 0x00, 0x02, 0x06, 0x01, 0x00, 0x02, 0x67, 0x42]))).toBe(true);
    expect(isKeyframe('H264', rtp([0x78, 0x00, 0x02, 0x06, 0x01, 0x00, 0x02, 0x41, 0x9a]))).toBe(false);
    expect(isKeyframe('H264', rtp([0x78, 0x00, 0x09, 0x06]))).toBe(false); // size past the end
    // FU-A: start bit set and IDR type; a middle fragment of it is not a start.
    expect(isKeyframe('H264', rtp([0x7c, 0x85, 0x88]))).toBe(true);
    expect(isKeyframe('H264', rtp([0x7c, 0x05, 0x88]))).toBe(false);
    expect(isKeyframe('H264', rtp([0x7c, 0x81, 0x88]))).toBe(false);
  });

  it('AV1: the N bit, or a sequence header OBU first', () => {
    expect(isKeyframe('AV1', rtp([0x18, 0x0a]))).toBe(true); // N=1, W=1
    // W=0: a LEB128 length (2 bytes here), then the OBU header of a sequence header (type 1).
    expect(isKeyframe('AV1', rtp([0x00, 0x81, 0x01, 0x0a, 0x00]))).toBe(true);
    // W=1: one element, no length: the OBU header first. A frame OBU (type 6) is not.
    expect(isKeyframe('AV1', rtp([0x10, 0x0a]))).toBe(true);
    expect(isKeyframe('AV1', rtp([0x10, 0x32]))).toBe(false);
    // Z=1: the packet continues an OBU from the one before.
    expect(isKeyframe('AV1', rtp([0x90, 0x0a]))).toBe(false);
    expect(isKeyframe('opus', rtp([0x10, 0x0a]))).toBe(false);
  });
});
