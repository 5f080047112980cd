import { randomInt } from 'node:crypto';
import { SAMPLE_RATE } from './pcm-frame.js';

/** CRC-32 of Ogg pages: polynomial 0x04c11db7, no reflection, initial value 0. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

function oggCrc(page: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < page.length; i++)
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ page[i]!) & 0xff]!) >>> 0;
  return crc;
}

const HEADER_TYPE_BOS = 0x02;
/** A page holds at most 255 lacing values; a packet takes length/255 + 1 of them. */
const MAX_SEGMENTS = 255;

/**
 * One listener's Ogg/Opus stream (RFC 7845): the two header pages, then pages of Opus
 * packets with granule positions counting 48 kHz samples at the *end* of each page
 * (the original wrote the count before the page and a pre-skip of 0). Each listener has
 * its own serial number and page sequence; the packets are shared between listeners.
 */
export class OggOpusWriter {
  private readonly serial = randomInt(1, 0x7fffffff);
  private sequence = 0;
  private granule = 0;

  constructor(
    private readonly preSkip: number,
    private readonly vendor = 'Chorus',
  ) {}

  /** OpusHead on a BOS page, then OpusTags on its own page. */
  headers(): Buffer {
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1; // version
    head[9] = 1; // channels
    head.writeUInt16LE(this.preSkip, 10);
    head.writeUInt32LE(SAMPLE_RATE, 12);
    head.writeInt16LE(0, 16); // output gain
    head[18] = 0; // mapping family: mono/stereo
    const vendor = Buffer.from(this.vendor, 'utf8');
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    tags.writeUInt32LE(0, 12 + vendor.length); // no comments
    return Buffer.concat([this.page([head], 0, HEADER_TYPE_BOS), this.page([tags], 0, 0)]);
  }

  /**
   * Pages carrying `packets` (each `samplesPerPacket` long), flushed now. Normally one
   * packet per mixer tick; a late joiner's backlog arrives as a few full pages.
   */
  audio(packets: readonly Uint8Array[], samplesPerPacket: number): Buffer {
    const pages: Buffer[] = [];
    let start = 0;
    while (start < packets.length) {
      let segments = 0;
      let end = start;
      while (end < packets.length) {
        const need = Math.floor(packets[end]!.length / 255) + 1;
        if (segments + need > MAX_SEGMENTS) break;
        segments += need;
        end++;
      }
      if (end === start) throw new RangeError('Opus packet too large for one Ogg page');
      this.granule += (end - start) * samplesPerPacket;
      pages.push(this.page(packets.slice(start, end), this.granule, 0));
      start = end;
    }
    return pages.length === 1 ? pages[0]! : Buffer.concat(pages);
  }

  private page(packets: readonly Uint8Array[], granule: number, type: number): Buffer {
    const lacing: number[] = [];
    let bodyLength = 0;
    for (const p of packets) {
      for (let n = p.length; ; n -= 255) {
        lacing.push(Math.min(n, 255));
        if (n < 255) break;
      }
      bodyLength += p.length;
    }
    const page = Buffer.alloc(27 + lacing.length + bodyLength);
    page.write('OggS', 0, 'latin1');
    page[4] = 0; // version
    page[5] = type;
    page.writeBigInt64LE(BigInt(granule), 6);
    page.writeUInt32LE(this.serial, 14);
    page.writeUInt32LE(this.sequence++, 18);
    // CRC (bytes 22-25) is computed with the field zeroed, then filled in.
    page[26] = lacing.length;
    let at = 27;
    for (const l of lacing) page[at++] = l;
    for (const p of packets) {
      page.set(p, at);
      at += p.length;
    }
    page.writeUInt32LE(oggCrc(page), 22);
    return page;
  }
}
