/**
 * RTX (RFC 4588): a retransmission travels on its own SSRC and payload type, with its own
 * sequence numbers, and carries the original sequence number (OSN) in the first two bytes
 * of its payload. A receiver that negotiated RTX can tell a retransmission from a new
 * packet (so its loss and bandwidth figures stay right), and a late retransmission is
 * never mistaken for media on the main stream.
 */

/** Length of an RTP packet's header (fixed part, CSRCs, extension block); -1 when malformed. */
export function rtpHeaderLength(packet: Buffer): number {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return -1;
  let off = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (off + 4 > packet.length) return -1;
    off += 4 + packet.readUInt16BE(off + 2) * 4;
  }
  return off <= packet.length ? off : -1;
}

/**
 * Turns an RTX packet back into the packet it repairs, in its own buffer: the header moves
 * two bytes forward over the OSN, then takes the OSN as its sequence number and the main
 * stream's payload type and SSRC. Returns the view of the repaired packet, or undefined
 * for a packet that repairs nothing: malformed, or padding only (senders probe bandwidth
 * with such RTX packets).
 */
export function unwrapRtx(packet: Buffer, payloadType: number, ssrc: number): Buffer | undefined {
  const header = rtpHeaderLength(packet);
  if (header < 0) return undefined;
  const padding = packet[0]! & 0x20 ? packet[packet.length - 1]! : 0;
  // The OSN and at least one byte of media.
  if (header + 2 >= packet.length - padding) return undefined;
  const osn = packet.readUInt16BE(header);
  packet.copyWithin(2, 0, header);
  const out = packet.subarray(2);
  out[1] = (out[1]! & 0x80) | payloadType;
  out.writeUInt16BE(osn, 2);
  out.writeUInt32BE(ssrc, 8);
  return out;
}

/**
 * Writes the RTX form of `packet` into `scratch` (payload type, SSRC and sequence number of
 * the RTX stream; the OSN before the payload) and returns its length; 0 when the packet is
 * malformed or does not fit. `scratch` is reused: the caller sends it before the next call
 * (node-datachannel copies on send).
 */
export function wrapRtx(
  packet: Buffer,
  scratch: Buffer,
  payloadType: number,
  ssrc: number,
  seq: number,
): number {
  const header = rtpHeaderLength(packet);
  const length = packet.length + 2;
  if (header < 0 || length > scratch.length) return 0;
  packet.copy(scratch, 0, 0, header);
  scratch.writeUInt16BE(packet.readUInt16BE(2), header);
  packet.copy(scratch, header + 2, header);
  scratch[1] = (packet[1]! & 0x80) | payloadType;
  scratch.writeUInt16BE(seq & 0xffff, 2);
  scratch.writeUInt32BE(ssrc, 8);
  return length;
}
