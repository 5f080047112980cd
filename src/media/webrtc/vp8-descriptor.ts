/**
 * The fields of a VP8 RTP payload descriptor (RFC 7741 4.2) a forwarder rewrites when it
 * splices streams: the picture id and TL0PICIDX. libwebrtc's receiver orders frames by
 * picture id (its VP8 reference finder drops frames whose id runs backwards), so a
 * subscriber switched to another simulcast layer must see them continue. `read` fills
 * this reusable object in place: nothing is allocated per packet.
 */
export class Vp8Descriptor {
  /** Where the picture id lies in the packet; -1 when the descriptor has none. */
  pictureIdAt = -1;
  /** The picture id has 15 bits (M bit set); else 7. */
  longPictureId = false;
  /** Where TL0PICIDX lies; -1 when absent. */
  tl0At = -1;
  /** This packet starts a key frame (S=1, partition 0, P bit clear in the frame header). */
  keyframe = false;

  /**
   * Reads the descriptor of the payload starting at `at`; false when the payload is too
   * short for what its first bytes announce (untrusted input).
   */
  read(packet: Buffer, at: number): boolean {
    this.pictureIdAt = -1;
    this.tl0At = -1;
    this.keyframe = false;
    if (at < 0 || at >= packet.length) return false;
    const b0 = packet[at]!;
    let i = at + 1;
    if (b0 & 0x80) {
      if (i >= packet.length) return false;
      const x = packet[i++]!;
      if (x & 0x80) {
        if (i >= packet.length) return false;
        this.pictureIdAt = i;
        this.longPictureId = (packet[i]! & 0x80) !== 0;
        i += this.longPictureId ? 2 : 1;
      }
      if (x & 0x40) this.tl0At = i++;
      if (x & 0x30) i++;
    }
    if (i > packet.length || (this.tl0At >= 0 && this.tl0At >= packet.length)) return false;
    if (this.pictureIdAt >= 0 && this.pictureIdAt + (this.longPictureId ? 2 : 1) > packet.length)
      return false;
    this.keyframe = (b0 & 0x10) !== 0 && (b0 & 0x07) === 0 && i < packet.length && (packet[i]! & 0x01) === 0;
    return true;
  }

  /** The picture id, widened to 15 bits; -1 when absent. */
  pictureId(packet: Buffer): number {
    if (this.pictureIdAt < 0) return -1;
    return this.longPictureId
      ? packet.readUInt16BE(this.pictureIdAt) & 0x7fff
      : packet[this.pictureIdAt]! & 0x7f;
  }

  /** Writes a picture id (cut to the field's width). */
  setPictureId(packet: Buffer, id: number): void {
    if (this.pictureIdAt < 0) return;
    const at = this.pictureIdAt;
    if (this.longPictureId) {
      packet[at] = 0x80 | ((id >> 8) & 0x7f);
      packet[at + 1] = id & 0xff;
    } else packet[at] = id & 0x7f;
  }

  tl0(packet: Buffer): number {
    return this.tl0At < 0 ? -1 : packet[this.tl0At]!;
  }

  setTl0(packet: Buffer, value: number): void {
    if (this.tl0At >= 0) packet[this.tl0At] = value & 0xff;
  }
}
