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

/** Where an Ogg stream stands: its serial number, next page number and granule so far. */
export interface OggPosition {
  readonly serial: number;
  readonly sequence: number;
  readonly granule: number;
}

/**
 * An Ogg/Opus stream (RFC 7845): the two header pages, then pages of Opus packets with
 * granule positions counting 48 kHz samples at the *end* of each page (the original
 * wrote the count before the page and a pre-skip of 0).
 *
 * A writer may start at any `position`: a listener joining a stream that others already
 * read (MixFeed) starts at page 0 (libogg reads a first page numbered otherwise as lost
 * data) with the stream's serial and its current granule position, which RFC 7845
 * allows (a stream that does not start at time 0).
 */
export class OggOpusWriter {
  private readonly serial: number;
  private sequence: number;
  private granule: number;

  constructor(
    private readonly preSkip: number,
    private readonly vendor = 'Chorus',
    at: Partial<OggPosition> = {},
  ) {
    this.serial = at.serial ?? randomInt(1, 0x7fffffff);
    this.sequence = at.sequence ?? 0;
    this.granule = at.granule ?? 0;
  }

  get position(): OggPosition {
    return { serial: this.serial, sequence: this.sequence, granule: this.granule };
  }

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
      const end = pageEnd(packets, start);
      this.granule += (end - start) * samplesPerPacket;
      pages.push(this.page(packets.slice(start, end), this.granule, 0));
      start = end;
    }
    return pages.length === 1 ? pages[0]! : Buffer.concat(pages);
  }

  /** Numbers `packets` as `audio` would, without building pages (nobody reads them). */
  skip(packets: readonly Uint8Array[], samplesPerPacket: number): void {
    this.sequence += oggPageCount(packets);
    this.granule += packets.length * samplesPerPacket;
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

/** Pages `audio` makes of `packets`. */
export function oggPageCount(packets: readonly Uint8Array[]): number {
  let pages = 0;
  for (let start = 0; start < packets.length; start = pageEnd(packets, start)) pages++;
  return pages;
}

/** The end (exclusive) of the page that starts with `packets[start]`. */
function pageEnd(packets: readonly Uint8Array[], start: number): number {
  let segments = 0;
  let end = start;
  while (end < packets.length) {
    const need = Math.floor(packets[end]!.length / 255) + 1;
    if (segments + need > MAX_SEGMENTS) break;
    segments += need;
    end++;
  }
  if (end === start) throw new RangeError('Opus packet too large for one Ogg page');
  return end;
}

/**
 * A copy of `pages` (one or more whole pages) numbered from `sequence` on, with their
 * CRCs redone: what a listener whose page numbers run `sequence - first` away from a
 * shared stream's gets instead of the shared Buffer.
 */
export function renumberOggPages(pages: Buffer, sequence: number): Buffer {
  const out = Buffer.allocUnsafe(pages.length);
  pages.copy(out);
  let at = 0;
  let n = sequence;
  while (at + 27 <= out.length) {
    const segments = out[at + 26]!;
    let end = at + 27 + segments;
    for (let i = 0; i < segments; i++) end += out[at + 27 + i]!;
    out.writeUInt32LE(n >>> 0, at + 18);
    out.writeUInt32LE(0, at + 22);
    out.writeUInt32LE(oggCrc(out.subarray(at, end)), at + 22);
    n++;
    at = end;
  }
  return out;
}
