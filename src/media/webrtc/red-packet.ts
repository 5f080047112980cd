import { rtpHeaderLength } from './rtx-packet.js';

/**
 * Opus RED (RFC 2198): a packet carries the current frame (the primary block, last) and
 * copies of earlier ones, each announced by a header: F (another header follows), the
 * block's payload type, and for redundant blocks a timestamp offset and a length; the
 * primary's header is one byte. A subscriber that did not negotiate RED gets the primary
 * alone (writeRedPrimary); one that did gets the packet with its own payload types
 * (setRedBlockTypes). Both walk a few bytes and allocate nothing.
 */

/**
 * Where the primary block's header is and how many bytes of redundant blocks precede the
 * primary's data, packed as `header * 65536 + redundantBytes`; -1 when malformed.
 */
function redLayout(packet: Buffer, start: number): number {
  const end = packet.length - (packet[0]! & 0x20 ? packet[packet.length - 1]! : 0);
  let off = start;
  let redundant = 0;
  while (off < end) {
    const b = packet[off]!;
    if (!(b & 0x80)) {
      if (off + 1 + redundant > end) return -1;
      return off * 65536 + redundant;
    }
    if (off + 4 > end) return -1;
    redundant += ((packet[off + 2]! & 0x03) << 8) | packet[off + 3]!;
    off += 4;
  }
  return -1;
}

/** Rewrites the payload type of every block header of a RED packet; false when malformed. */
export function setRedBlockTypes(packet: Buffer, payloadType: number): boolean {
  const header = rtpHeaderLength(packet);
  if (header < 0) return false;
  const layout = redLayout(packet, header);
  if (layout < 0) return false;
  const primary = Math.floor(layout / 65536);
  for (let off = header; off < primary; off += 4) packet[off] = 0x80 | payloadType;
  packet[primary] = payloadType;
  return true;
}

/**
 * Writes the RTP packet of a RED packet's primary block into `scratch` (the RTP header
 * with `payloadType`, then the primary's data; padding dropped) and returns its length; 0
 * when the packet is malformed or does not fit.
 */
export function writeRedPrimary(packet: Buffer, scratch: Buffer, payloadType: number): number {
  const header = rtpHeaderLength(packet);
  if (header < 0) return 0;
  const layout = redLayout(packet, header);
  if (layout < 0) return 0;
  const data = Math.floor(layout / 65536) + 1 + (layout % 65536);
  const end = packet.length - (packet[0]! & 0x20 ? packet[packet.length - 1]! : 0);
  const length = header + (end - data);
  if (length > scratch.length) return 0;
  packet.copy(scratch, 0, 0, header);
  packet.copy(scratch, header, data, end);
  scratch[0] = scratch[0]! & ~0x20; // no padding any more
  scratch[1] = (packet[1]! & 0x80) | payloadType;
  return length;
}
