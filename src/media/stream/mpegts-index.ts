import type { ContainerIndex } from './container-index.js';

const PACKET = 188;
const SYNC = 0x47;
/** PMT stream types read as video: MPEG-1, MPEG-2, MPEG-4 part 2, H.264, HEVC. */
const VIDEO_TYPES = new Set([0x01, 0x02, 0x10, 0x1b, 0x24]);

/**
 * Follows a live MPEG transport stream (188-byte packets from the publisher's first byte).
 * The initialisation is the latest PAT and the first program's PMT (a copy of each packet,
 * made only when it changes). A random-access point is the start of a video PES whose
 * packet has the adaptation field's random_access_indicator (ffmpeg sets it on every
 * keyframe); for a muxer that never sets it on the video PID, a PES whose first packet
 * holds an H.264 IDR or SPS, an HEVC IRAP or VPS, or an MPEG-1/2 sequence or GOP header.
 * Without video, every PES start of the first stream is one (audio frames stand alone).
 * Sections spanning packets are not read (PAT and PMT fit one in practice). A lost sync
 * byte stops the index.
 */
export class MpegTsIndex implements ContainerIndex {
  readonly format = 'mpegts' as const;
  cutAt = -1;
  init: Buffer | undefined;
  readonly resume = undefined;
  failed = false;

  private pos = 0;
  /** A packet split across chunks is put together here (copying at most one per chunk). */
  private readonly carry = Buffer.alloc(PACKET);
  private carried = 0;
  private pmtPid = -1;
  private videoPid = -1;
  private videoType = 0;
  private firstPid = -1;
  private pat: Buffer | undefined;
  private pmt: Buffer | undefined;
  private initDirty = false;
  private raiSeen = false;

  scan(chunk: Buffer, at: number): void {
    if (this.failed) return;
    if (at !== this.pos) {
      this.failed = true;
      return;
    }
    const n = chunk.length;
    this.pos = at + n;
    let i = 0;
    if (this.carried > 0) {
      const take = Math.min(PACKET - this.carried, n);
      chunk.copy(this.carry, this.carried, 0, take);
      this.carried += take;
      i = take;
      if (this.carried < PACKET) return;
      this.carried = 0;
      this.packet(this.carry, 0, at + take - PACKET);
    }
    for (; i + PACKET <= n && !this.failed; i += PACKET) this.packet(chunk, i, at + i);
    if (i < n && !this.failed) {
      chunk.copy(this.carry, 0, i, n);
      this.carried = n - i;
    }
  }

  private packet(buf: Buffer, o: number, start: number): void {
    if (buf[o] !== SYNC) {
      this.failed = true;
      return;
    }
    const b1 = buf[o + 1]!;
    const pusi = (b1 & 0x40) !== 0;
    const pid = ((b1 & 0x1f) << 8) | buf[o + 2]!;
    const afc = (buf[o + 3]! >> 4) & 3;
    const end = o + PACKET;
    let p = o + 4;
    let rai = false;
    if ((afc & 2) !== 0) {
      const afLength = buf[o + 4]!;
      if (afLength > 0) rai = (buf[o + 5]! & 0x40) !== 0;
      p = o + 5 + afLength;
    }
    const payload = (afc & 1) !== 0 && p < end;
    if (pid === 0) {
      if (pusi && payload) this.readPat(buf, o, p, end);
      return;
    }
    if (pid === this.pmtPid) {
      if (pusi && payload) this.readPmt(buf, o, p, end);
      return;
    }
    const video = this.videoPid >= 0;
    if (video ? pid !== this.videoPid : pid !== this.firstPid) return;
    if (rai) this.raiSeen = true;
    if (!pusi || !this.pat || !this.pmt) return;
    const random = !video || rai || (!this.raiSeen && payload && startsKeyframe(buf, p, end, this.videoType));
    if (!random) return;
    if (this.initDirty) {
      this.init = Buffer.concat([this.pat, this.pmt]);
      this.initDirty = false;
    }
    if (start > this.cutAt) this.cutAt = start;
  }

  private readPat(buf: Buffer, o: number, p: number, end: number): void {
    const t = p + 1 + buf[p]!;
    if (t + 8 > end || buf[t] !== 0x00) return;
    const sectionEnd = Math.min(t + 3 + (((buf[t + 1]! & 0x0f) << 8) | buf[t + 2]!) - 4, end);
    for (let k = t + 8; k + 4 <= sectionEnd; k += 4) {
      const program = (buf[k]! << 8) | buf[k + 1]!;
      if (program === 0) continue; // the network PID
      const pmtPid = ((buf[k + 2]! & 0x1f) << 8) | buf[k + 3]!;
      if (pmtPid !== this.pmtPid) {
        this.pmtPid = pmtPid;
        this.pmt = undefined;
        this.videoPid = -1;
        this.firstPid = -1;
      }
      this.pat = this.keep(this.pat, buf, o);
      return;
    }
  }

  private readPmt(buf: Buffer, o: number, p: number, end: number): void {
    const t = p + 1 + buf[p]!;
    if (t + 12 > end || buf[t] !== 0x02) return;
    const sectionEnd = Math.min(t + 3 + (((buf[t + 1]! & 0x0f) << 8) | buf[t + 2]!) - 4, end);
    let k = t + 12 + (((buf[t + 10]! & 0x0f) << 8) | buf[t + 11]!);
    let first = -1;
    let video = -1;
    let videoType = 0;
    while (k + 5 <= sectionEnd) {
      const type = buf[k]!;
      const pid = ((buf[k + 1]! & 0x1f) << 8) | buf[k + 2]!;
      if (first < 0) first = pid;
      if (video < 0 && VIDEO_TYPES.has(type)) {
        video = pid;
        videoType = type;
      }
      k += 5 + (((buf[k + 3]! & 0x0f) << 8) | buf[k + 4]!);
    }
    if (first < 0) return;
    if (video !== this.videoPid) this.raiSeen = false;
    this.videoPid = video;
    this.videoType = videoType;
    this.firstPid = first;
    this.pmt = this.keep(this.pmt, buf, o);
  }

  /** The held copy of a PSI packet, replaced only when its bytes change. */
  private keep(held: Buffer | undefined, buf: Buffer, o: number): Buffer {
    if (held && buf.compare(held, 0, PACKET, o, o + PACKET) === 0) return held;
    const copy = Buffer.allocUnsafe(PACKET);
    buf.copy(copy, 0, o, o + PACKET);
    this.initDirty = true;
    return copy;
  }
}

/** Whether the elementary stream bytes in this first packet of a PES begin a keyframe. */
function startsKeyframe(buf: Buffer, p: number, end: number, type: number): boolean {
  if (p + 9 > end || buf[p] !== 0 || buf[p + 1] !== 0 || buf[p + 2] !== 1) return false;
  for (let k = p + 9 + buf[p + 8]!; k + 3 < end; k++) {
    if (buf[k] !== 0 || buf[k + 1] !== 0 || buf[k + 2] !== 1) continue;
    const code = buf[k + 3]!;
    switch (type) {
      case 0x1b: {
        const nal = code & 0x1f;
        if (nal === 5 || nal === 7) return true;
        break;
      }
      case 0x24: {
        const nal = (code >> 1) & 0x3f;
        if ((nal >= 16 && nal <= 21) || nal === 32) return true;
        break;
      }
      case 0x01:
      case 0x02:
        if (code === 0xb3 || code === 0xb8) return true;
        break;
    }
  }
  return false;
}
