import type { CodecName } from './codec-policy.js';

/**
 * Where an RTP packet's payload starts: after the fixed header, the CSRCs and the header
 * extension block; -1 when the packet is too short for what its header announces.
 */
export function rtpPayloadOffset(packet: Buffer): number {
  if (packet.length < 12) return -1;
  let off = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (off + 4 > packet.length) return -1;
    off += 4 + packet.readUInt16BE(off + 2) * 4;
  }
  return off < packet.length ? off : -1;
}

/**
 * VP8 (RFC 7741 4.2-4.3): the payload descriptor (extension byte, picture id, TL0PICIDX,
 * TID/KEYIDX), then the first partition's header, whose P bit is 0 on a key frame. Only
 * the packet that starts partition 0 of a frame (S=1, PID=0) carries that bit.
 */
function vp8Keyframe(p: Buffer, off: number): boolean {
  const b0 = p[off]!;
  if (!(b0 & 0x10) || (b0 & 0x07) !== 0) return false;
  let i = off + 1;
  if (b0 & 0x80) {
    const x = p[i++];
    if (x === undefined) return false;
    if (x & 0x80) i += p[i] !== undefined && p[i]! & 0x80 ? 2 : 1; // picture id, 7 or 15 bits
    if (x & 0x40) i += 1; // TL0PICIDX
    if (x & 0x30) i += 1; // TID / KEYIDX
  }
  return i < p.length && (p[i]! & 0x01) === 0;
}

/**
 * VP9 (RFC 9628 4.2): a frame that starts (B=1), is not inter-picture predicted (P=0) and,
 * with SVC, is the base spatial layer (SID 0): where a receiver can start decoding.
 */
function vp9Keyframe(p: Buffer, off: number): boolean {
  const b0 = p[off]!;
  if (b0 & 0x40 || !(b0 & 0x08)) return false;
  if (!(b0 & 0x20)) return true; // no layer indices: one spatial layer
  let i = off + 1;
  if (b0 & 0x80) i += p[i] !== undefined && p[i]! & 0x80 ? 2 : 1; // picture id
  const layers = p[i];
  return layers !== undefined && ((layers >> 1) & 0x07) === 0;
}

const H264_IDR = 5;
const H264_SPS = 7;
const H264_STAP_A = 24;
const H264_FU_A = 28;

/**
 * H.264 (RFC 6184 5.6-5.8): an IDR slice or a sequence parameter set, alone (single NAL
 * unit), inside an aggregation (STAP-A) or as the start of a fragmented unit (FU-A).
 */
function h264Keyframe(p: Buffer, off: number): boolean {
  const type = p[off]! & 0x1f;
  if (type === H264_IDR || type === H264_SPS) return true;
  if (type === H264_FU_A) {
    const fu = p[off + 1];
    return fu !== undefined && (fu & 0x80) !== 0 && ((fu & 0x1f) === H264_IDR || (fu & 0x1f) === H264_SPS);
  }
  if (type === H264_STAP_A) {
    for (let i = off + 1; i + 2 < p.length; i += 2 + p.readUInt16BE(i)) {
      const t = p[i + 2]! & 0x1f;
      if (t === H264_IDR || t === H264_SPS) return true;
    }
  }
  return false;
}

const AV1_OBU_SEQUENCE_HEADER = 1;

/**
 * AV1 (RTP payload format for AV1, 4.4): the aggregation header's N bit marks the first
 * packet of a coded video sequence; a sequence header OBU opening the packet (its first
 * element not a continuation, Z=0) says the same for senders that leave N unset.
 */
function av1Keyframe(p: Buffer, off: number): boolean {
  const agg = p[off]!;
  if (agg & 0x08) return true;
  if (agg & 0x80) return false;
  let i = off + 1;
  // W=0: every element is preceded by its LEB128 length; W=1..3: the first one is too
  // unless it is the only one.
  if ((agg & 0x30) !== 0x10) {
    while (i < p.length && p[i]! & 0x80) i++;
    i++;
  }
  return i < p.length && ((p[i]! >> 3) & 0x0f) === AV1_OBU_SEQUENCE_HEADER;
}

/**
 * True when this RTP packet starts a frame a decoder can begin with. Per packet: reads a
 * few bytes of the payload, allocates nothing.
 */
export function isKeyframe(codec: CodecName, packet: Buffer): boolean {
  const off = rtpPayloadOffset(packet);
  if (off < 0) return false;
  switch (codec) {
    case 'VP8':
      return vp8Keyframe(packet, off);
    case 'VP9':
      return vp9Keyframe(packet, off);
    case 'H264':
      return h264Keyframe(packet, off);
    case 'AV1':
      return av1Keyframe(packet, off);
    case 'opus':
      return false;
  }
}
