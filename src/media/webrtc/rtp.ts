/** RTP/RTCP demultiplexing (RFC 5761): RTCP packet types 192-223 sit in byte 1. */
export function isRtcp(packet: Buffer): boolean {
  if (packet.length < 4) return false;
  const pt = packet[1]!;
  return pt >= 192 && pt <= 223;
}

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_PSFB = 206;
export const RTCP_RTPFB = 205;

/**
 * True when a (compound) RTCP packet asks for a keyframe: PLI (PSFB FMT 1) or FIR
 * (PSFB FMT 4). Walks the compound without allocating.
 */
export function wantsKeyframe(packet: Buffer): boolean {
  let off = 0;
  while (off + 4 <= packet.length) {
    const fmt = packet[off]! & 0x1f;
    const pt = packet[off + 1]!;
    const words = packet.readUInt16BE(off + 2);
    if (pt === RTCP_PSFB && (fmt === 1 || fmt === 4)) return true;
    off += (words + 1) * 4;
  }
  return false;
}

/** What a receiver last said about one stream in a report block (RFC 3550 6.4.1). */
export interface ReceptionReport {
  /** Share of packets lost in the interval before the report, 0 to 1. */
  fractionLost: number;
  /** Packets lost since the stream began (negative with duplicates). */
  cumulativeLost: number;
  /** Interarrival jitter, in RTP timestamp units. */
  jitter: number;
}

/**
 * Finds the report block about stream `ssrc` in the SRs and RRs of a (compound) RTCP
 * packet and copies it into `out`, without allocating; false when there is none.
 */
export function findReceptionReport(packet: Buffer, ssrc: number, out: ReceptionReport): boolean {
  let off = 0;
  while (off + 8 <= packet.length) {
    const count = packet[off]! & 0x1f;
    const pt = packet[off + 1]!;
    const end = Math.min(packet.length, off + (packet.readUInt16BE(off + 2) + 1) * 4);
    // Report blocks follow the sender's SSRC (RR) or its 20-byte sender info too (SR).
    const first = pt === RTCP_SR ? off + 28 : pt === RTCP_RR ? off + 8 : end;
    for (let i = 0, b = first; i < count && b + 24 <= end; i++, b += 24) {
      if (packet.readUInt32BE(b) !== ssrc) continue;
      out.fractionLost = packet[b + 4]! / 256;
      out.cumulativeLost = packet.readIntBE(b + 5, 3);
      out.jitter = packet.readUInt32BE(b + 12);
      return true;
    }
    off = end;
  }
  return false;
}

/**
 * Calls `fn` with each sequence number a (compound) RTCP packet's generic NACKs (RTPFB
 * FMT 1, RFC 4585 6.2.1) for the stream `mediaSsrc` ask for: every FCI's PID and the bits
 * of its BLP. NACKs for other streams in the same compound are skipped: their sequence
 * numbers belong to another history.
 */
export function forEachNackedSeq(packet: Buffer, mediaSsrc: number, fn: (seq: number) => void): void {
  let off = 0;
  while (off + 4 <= packet.length) {
    const fmt = packet[off]! & 0x1f;
    const pt = packet[off + 1]!;
    const end = Math.min(packet.length, off + (packet.readUInt16BE(off + 2) + 1) * 4);
    if (pt === RTCP_RTPFB && fmt === 1 && end - off >= 12 && packet.readUInt32BE(off + 8) === mediaSsrc) {
      for (let fci = off + 12; fci + 4 <= end; fci += 4) {
        const pid = packet.readUInt16BE(fci);
        const blp = packet.readUInt16BE(fci + 2);
        fn(pid);
        for (let bit = 0; bit < 16; bit++) if (blp & (1 << bit)) fn((pid + bit + 1) & 0xffff);
      }
    }
    off = end;
  }
}

/**
 * An RTCP packet of `bytes` with its header (count or FMT in the low bits of byte 0), the
 * sender's SSRC and, in the next word, the media SSRC (feedback) or the first report
 * block's SSRC (RR): the common start of the packets the helpers below build.
 */
function rtcpPacket(
  bytes: number,
  countOrFmt: number,
  pt: number,
  senderSsrc: number,
  mediaSsrc: number,
): Buffer {
  const b = Buffer.alloc(bytes);
  b[0] = 0x80 | countOrFmt;
  b[1] = pt;
  b.writeUInt16BE(bytes / 4 - 1, 2);
  b.writeUInt32BE(senderSsrc, 4);
  b.writeUInt32BE(mediaSsrc, 8);
  return b;
}

/**
 * Builds a NACK (RTPFB FMT 1) for `seq` and, through the bitmask `blp`, the 16 after it:
 * used by tests and the bench.
 */
export function buildNack(senderSsrc: number, mediaSsrc: number, seq: number, blp = 0): Buffer {
  const b = rtcpPacket(16, 1, RTCP_RTPFB, senderSsrc, mediaSsrc);
  b.writeUInt16BE(seq, 12);
  b.writeUInt16BE(blp, 14);
  return b;
}

/** Builds an RR with one report block about `mediaSsrc`: used by tests. */
export function buildReceiverReport(
  senderSsrc: number,
  mediaSsrc: number,
  report: { fractionLost: number; cumulativeLost: number; jitter: number; highestSeq?: number },
): Buffer {
  const b = rtcpPacket(32, 1, RTCP_RR, senderSsrc, mediaSsrc);
  b[12] = Math.min(255, Math.round(report.fractionLost * 256));
  b.writeIntBE(report.cumulativeLost, 13, 3);
  b.writeUInt32BE(report.highestSeq ?? 0, 16);
  b.writeUInt32BE(report.jitter, 20);
  return b;
}

/** Builds a PLI (PSFB FMT 1). */
export function buildPli(senderSsrc: number, mediaSsrc: number): Buffer {
  return rtcpPacket(12, 1, RTCP_PSFB, senderSsrc, mediaSsrc);
}

/**
 * The payload of an RTP packet (after CSRCs and the header extension, before padding),
 * as a view into `packet`; undefined when the packet is malformed.
 */
export function rtpPayload(packet: Buffer): Buffer | undefined {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return undefined;
  let off = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (off + 4 > packet.length) return undefined;
    off += 4 + packet.readUInt16BE(off + 2) * 4;
  }
  let end = packet.length;
  if (packet[0]! & 0x20) end -= packet[packet.length - 1]!;
  return off <= end ? packet.subarray(off, end) : undefined;
}

/** Where one header extension element's data lies in a packet (see findHeaderExtension). */
export interface ExtensionSpan {
  offset: number;
  length: number;
}

/**
 * Finds the element `id` in an RTP packet's header extension (RFC 8285: the one-byte form,
 * profile 0xBEDE, and the two-byte form, 0x100x) and copies where its data lies into
 * `out`. False when the packet has no such element, or when the extension is truncated or
 * malformed (the search stops there: untrusted input). Per packet: allocates nothing.
 */
export function findHeaderExtension(packet: Buffer, id: number, out: ExtensionSpan): boolean {
  if (packet.length < 12 || !(packet[0]! & 0x10)) return false;
  const start = 12 + (packet[0]! & 0x0f) * 4;
  if (start + 4 > packet.length) return false;
  const profile = packet.readUInt16BE(start);
  const end = start + 4 + packet.readUInt16BE(start + 2) * 4;
  if (end > packet.length) return false;
  const oneByte = profile === 0xbede;
  if (!oneByte && profile >> 4 !== 0x100) return false;
  let at = start + 4;
  while (at < end) {
    const b = packet[at]!;
    if (b === 0) {
      at++; // padding
      continue;
    }
    let elementId: number;
    let length: number;
    if (oneByte) {
      elementId = b >> 4;
      if (elementId === 15) return false; // "stop parsing" (RFC 8285 4.2)
      length = (b & 0x0f) + 1;
      at += 1;
    } else {
      if (at + 2 > end) return false;
      elementId = b;
      length = packet[at + 1]!;
      at += 2;
    }
    if (at + length > end) return false;
    if (elementId === id) {
      out.offset = at;
      out.length = length;
      return true;
    }
    at += length;
  }
  return false;
}

/**
 * The bitrate (bits/s) a receiver's REMB (PSFB FMT 15, "REMB" application layer
 * feedback, draft-alvestrand-rmcat-remb) in a (compound) RTCP packet says it can take;
 * -1 when the packet has none. Allocates nothing.
 */
export function readRemb(packet: Buffer): number {
  let off = 0;
  while (off + 4 <= packet.length) {
    const fmt = packet[off]! & 0x1f;
    const pt = packet[off + 1]!;
    const end = Math.min(packet.length, off + (packet.readUInt16BE(off + 2) + 1) * 4);
    // Header, sender and media SSRC, "REMB", then count / exponent / mantissa.
    if (pt === RTCP_PSFB && fmt === 15 && end - off >= 20 && packet.readUInt32BE(off + 12) === 0x52454d42) {
      const exp = packet[off + 17]! >> 2;
      const mantissa = ((packet[off + 17]! & 0x03) << 16) | packet.readUInt16BE(off + 18);
      return mantissa * 2 ** exp;
    }
    off = end;
  }
  return -1;
}

/** Builds a REMB saying `bitsPerSecond` for the streams `ssrcs`. */
export function buildRemb(senderSsrc: number, bitsPerSecond: number, ssrcs: readonly number[]): Buffer {
  const b = rtcpPacket(20 + 4 * ssrcs.length, 15, RTCP_PSFB, senderSsrc, 0);
  b.writeUInt32BE(0x52454d42, 12);
  let exp = 0;
  let mantissa = Math.max(0, Math.floor(bitsPerSecond));
  while (mantissa > 0x3ffff) {
    mantissa = Math.floor(mantissa / 2);
    exp++;
  }
  b[16] = ssrcs.length;
  b[17] = (exp << 2) | (mantissa >> 16);
  b.writeUInt16BE(mantissa & 0xffff, 18);
  ssrcs.forEach((s, i) => b.writeUInt32BE(s, 20 + 4 * i));
  return b;
}
