/** Bytes of padding in one padding packet (RFC 3550 5.1: the last byte counts them, itself included). */
export const PADDING_BYTES = 244;
/** A padding packet's length: the 12-byte RTP header and its padding, no payload. */
export const PADDING_PACKET_BYTES = 12 + PADDING_BYTES;

/**
 * A padding-only RTP packet (the P bit set, no payload), as libwebrtc senders probe with:
 * the receiver counts its bytes in its bandwidth estimate and drops it. One buffer, written
 * again for each packet (node-datachannel copies on send): nothing is allocated per packet.
 */
export class PaddingPacket {
  readonly buffer = Buffer.alloc(PADDING_PACKET_BYTES);

  constructor() {
    this.buffer[0] = 0xa0; // version 2, P set, no extension, no CSRC
    this.buffer[PADDING_PACKET_BYTES - 1] = PADDING_BYTES;
  }

  /** Writes the header of the next packet and returns the buffer to send. */
  write(payloadType: number, ssrc: number, seq: number, timestamp: number): Buffer {
    const b = this.buffer;
    b[1] = payloadType & 0x7f;
    b[2] = (seq >> 8) & 0xff;
    b[3] = seq & 0xff;
    b.writeUInt32BE(timestamp >>> 0, 4);
    b.writeUInt32BE(ssrc >>> 0, 8);
    return b;
  }
}

/** Whether `packet` is padding only: the P bit set and no payload before its padding. */
export function isPaddingOnly(packet: Buffer): boolean {
  if (packet.length < 13 || packet[0]! >> 6 !== 2 || !(packet[0]! & 0x20)) return false;
  let header = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (header + 4 > packet.length) return false;
    header += 4 + packet.readUInt16BE(header + 2) * 4;
  }
  const padding = packet[packet.length - 1]!;
  return padding > 0 && header + padding === packet.length;
}
