import type { ContainerIndex } from './container-index.js';

// EBML element ids (Matroska / WebM) the index reads; everything else is skipped unread.
const EBML = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const CLUSTER = 0x1f43b675;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const TRACK_NUMBER = 0xd7;
const TRACK_TYPE = 0x83;
const SIMPLE_BLOCK = 0xa3;
const BLOCK_GROUP = 0xa0;
const BLOCK = 0xa1;
const REFERENCE_BLOCK = 0xfb;
const TIMECODE = 0xe7;
const VIDEO_TRACK = 1;
/** The Segment's children: one of them begins where an unknown-size Cluster ends. */
const SEGMENT_CHILDREN = new Set([
  0x114d9b74, // SeekHead
  0x1549a966, // Info
  TRACKS,
  0x1c53bb6b, // Cues
  0x1254c367, // Tags
  0x1043a770, // Chapters
  0x1941a469, // Attachments
  CLUSTER,
]);

/** A header (EBML header, Segment header, Info, Tracks, ...) longer than this is not a live stream we follow. */
const MAX_INIT_BYTES = 1 << 20;
const MAX_TRACKS_BYTES = 256 * 1024;
const MAX_DEPTH = 8;
/** Sizes beyond 2^50 are not exact in a double and no live stream has them: treated as bad input. */
const MAX_SIZE = 2 ** 50;
const UNKNOWN = -1;

const enum Phase {
  Id,
  Size,
  Skip,
  Tracks,
  BlockHeader,
  Timecode,
}

/**
 * Follows a live WebM (Matroska) stream: the initialisation segment is everything before
 * the first Cluster (EBML header, Segment header, SeekHead, Info, Tracks, ...), and a
 * random-access point is a video keyframe block (a SimpleBlock with the keyframe flag, or
 * a BlockGroup without ReferenceBlock). At the start of its Cluster the cut is the
 * Cluster; inside one (ffmpeg's live output cuts Clusters by time, not at keyframes) it is
 * the block, and `resume` is a new Cluster header of unknown size with the same Timecode,
 * so the blocks' relative times still hold. Without a video track, a Cluster whose first
 * block is a keyframe. Segments and Clusters of unknown size (as MediaRecorder and
 * ffmpeg's live output write them) end where an element that cannot be their child
 * begins. A second EBML header (a chained stream) is not followed.
 *
 * Byte by byte only for element headers; payloads are skipped by length, so the cost per
 * chunk is a few elements, not its size.
 */
export class WebmIndex implements ContainerIndex {
  readonly format = 'webm' as const;
  cutAt = -1;
  init: Buffer | undefined;
  resume: Buffer | undefined;
  failed = false;

  private pos = 0;
  private phase = Phase.Id;
  private id = 0;
  private idLen = 0;
  private idRead = 0;
  private size = 0;
  private sizeLen = 0;
  private sizeRead = 0;
  private sizeAllOnes = false;
  private elemStart = 0;
  private skipLeft = 0;
  private readonly stackId: number[] = [];
  private readonly stackEnd: number[] = [];
  private sawHeader = false;

  // The initialisation segment while it is being read: views of the chunks so far.
  private initParts: Buffer[] | undefined = [];
  private initBytes = 0;
  private initEndAt = -1;

  private tracks: Buffer | undefined;
  private tracksFill = 0;
  private videoTracks = new Set<number>();

  private readonly blockHead = Buffer.alloc(8);
  private blockFill = 0;
  private blockNeed = 0;
  private blockSize = 0;
  private blockInGroup = false;
  private groupTrack = -1;
  private groupRef = false;

  private blockStart = 0;
  private groupStart = 0;
  private clusterStart = -1;
  private clusterTimecode = -1;
  /** Whether a video block of the current Cluster has been seen (a keyframe after one cuts inside it). */
  private clusterHasVideo = false;
  private timecodeLeft = 0;
  private timecode = 0;

  scan(chunk: Buffer, at: number): void {
    if (this.failed) return;
    if (at !== this.pos) return this.fail();
    const n = chunk.length;
    let i = 0;
    while (i < n && !this.failed) {
      switch (this.phase) {
        case Phase.Id:
          i = this.readId(chunk, i);
          break;
        case Phase.Size:
          i = this.readSize(chunk, i);
          break;
        case Phase.Skip: {
          const take = Math.min(this.skipLeft, n - i);
          i += take;
          this.pos += take;
          this.skipLeft -= take;
          if (this.skipLeft === 0) this.elementDone();
          break;
        }
        case Phase.Tracks:
          i = this.readTracks(chunk, i);
          break;
        case Phase.BlockHeader:
          i = this.readBlockHeader(chunk, i);
          break;
        case Phase.Timecode:
          i = this.readTimecode(chunk, i);
          break;
      }
    }
    // Also after a failure here: a Cluster seen before it still ends the header, so a cut
    // made before it stands (the cache acts on it), the same as had the chunk been split.
    this.keepInit(chunk, at);
  }

  private readId(chunk: Buffer, i: number): number {
    const b = chunk[i]!;
    if (this.idRead === 0) {
      this.closeEnded();
      this.elemStart = this.pos;
      const len = b >= 0x80 ? 1 : b >= 0x40 ? 2 : b >= 0x20 ? 3 : b >= 0x10 ? 4 : 0;
      if (len === 0) {
        this.fail();
        return i;
      }
      this.idLen = len;
      this.id = b;
    } else {
      this.id = this.id * 256 + b;
    }
    this.idRead++;
    this.pos++;
    if (this.idRead === this.idLen) {
      this.idRead = 0;
      this.sizeRead = 0;
      this.phase = Phase.Size;
    }
    return i + 1;
  }

  private readSize(chunk: Buffer, i: number): number {
    const b = chunk[i]!;
    if (this.sizeRead === 0) {
      const len = vintLength(b);
      if (len === 0) {
        this.fail();
        return i;
      }
      const mask = 0xff >> len;
      this.sizeLen = len;
      this.size = b & mask;
      this.sizeAllOnes = this.size === mask;
    } else {
      this.size = this.size * 256 + b;
      this.sizeAllOnes = this.sizeAllOnes && b === 0xff;
    }
    this.sizeRead++;
    this.pos++;
    if (this.sizeRead === this.sizeLen) {
      if (this.sizeAllOnes) this.element(UNKNOWN);
      else if (this.size > MAX_SIZE) this.fail();
      else this.element(this.size);
    }
    return i + 1;
  }

  /** An element's header has been read; its data starts at `pos`. */
  private element(size: number): void {
    const id = this.id;
    this.closeUnknown(id);
    const depth = this.stackId.length;
    const parent = depth > 0 ? this.stackId[depth - 1]! : 0;
    if (!this.sawHeader && id !== EBML) return this.fail();
    switch (parent) {
      case 0:
        if (id === EBML) {
          if (this.sawHeader) return this.fail(); // a chained stream: not followed
          this.sawHeader = true;
          return this.skip(size);
        }
        if (id === SEGMENT) return this.enter(size);
        return this.skip(size);
      case SEGMENT:
        if (id === CLUSTER) {
          if (this.initParts && this.initEndAt < 0) this.initEndAt = this.elemStart;
          this.clusterStart = this.elemStart;
          this.clusterTimecode = -1;
          this.clusterHasVideo = false;
          return this.enter(size);
        }
        if (id === TRACKS && size >= 0 && size <= MAX_TRACKS_BYTES) {
          this.tracks = Buffer.alloc(size);
          this.tracksFill = 0;
          this.phase = Phase.Tracks;
          if (size === 0) this.tracksDone();
          return;
        }
        return this.skip(size);
      case CLUSTER:
        if (id === SIMPLE_BLOCK) return this.block(size, false);
        if (id === TIMECODE && size > 0 && size <= 6) {
          this.timecodeLeft = size;
          this.timecode = 0;
          this.phase = Phase.Timecode;
          return;
        }
        if (id === BLOCK_GROUP) {
          this.groupStart = this.elemStart;
          this.groupTrack = -1;
          this.groupRef = false;
          return this.enter(size);
        }
        return this.skip(size);
      case BLOCK_GROUP:
        if (id === BLOCK) return this.block(size, true);
        if (id === REFERENCE_BLOCK) this.groupRef = true;
        return this.skip(size);
      default:
        return this.skip(size);
    }
  }

  private enter(size: number): void {
    if (this.stackId.length >= MAX_DEPTH) return this.fail();
    if (size === UNKNOWN && this.id !== SEGMENT && this.id !== CLUSTER) return this.fail();
    this.stackId.push(this.id);
    this.stackEnd.push(size === UNKNOWN ? Infinity : this.pos + size);
    this.phase = Phase.Id;
  }

  private skip(size: number): void {
    if (size === UNKNOWN) return this.fail();
    this.skipLeft = size;
    this.phase = Phase.Skip;
    if (size === 0) this.elementDone();
  }

  private elementDone(): void {
    this.phase = Phase.Id;
    this.closeEnded();
  }

  private block(size: number, inGroup: boolean): void {
    if (size === UNKNOWN) return this.fail();
    this.blockSize = size;
    this.blockStart = this.elemStart;
    this.blockFill = 0;
    this.blockNeed = 1;
    this.blockInGroup = inGroup;
    this.phase = Phase.BlockHeader;
  }

  /** A block starts with its track number (a vint), a 16-bit timecode and the flags. */
  private readBlockHeader(chunk: Buffer, i: number): number {
    const b = chunk[i]!;
    if (this.blockFill === 0) {
      const len = vintLength(b);
      const need = this.blockInGroup ? len : len + 3;
      if (len === 0 || need > this.blockSize) {
        this.fail();
        return i;
      }
      this.blockNeed = need;
    }
    this.blockHead[this.blockFill++] = b;
    this.pos++;
    if (this.blockFill === this.blockNeed) {
      const len = vintLength(this.blockHead[0]!);
      const track = vintValue(this.blockHead, 0, len);
      if (this.blockInGroup) this.groupTrack = track;
      else this.blockSeen(track, (this.blockHead[len + 2]! & 0x80) !== 0, this.blockStart);
      this.skip(this.blockSize - this.blockNeed);
    }
    return i + 1;
  }

  private readTimecode(chunk: Buffer, i: number): number {
    this.timecode = this.timecode * 256 + chunk[i]!;
    this.pos++;
    if (--this.timecodeLeft === 0) {
      this.clusterTimecode = this.timecode;
      this.elementDone();
    }
    return i + 1;
  }

  private readTracks(chunk: Buffer, i: number): number {
    const t = this.tracks!;
    const take = Math.min(t.length - this.tracksFill, chunk.length - i);
    chunk.copy(t, this.tracksFill, i, i + take);
    this.tracksFill += take;
    this.pos += take;
    if (this.tracksFill === t.length) this.tracksDone();
    return i + take;
  }

  private tracksDone(): void {
    this.videoTracks = videoTrackNumbers(this.tracks!);
    this.tracks = undefined;
    this.elementDone();
  }

  /** A video keyframe is where a joiner may start. */
  private blockSeen(track: number, keyframe: boolean, start: number): void {
    const video = this.videoTracks.size === 0 || this.videoTracks.has(track);
    const first = video && !this.clusterHasVideo;
    if (video) this.clusterHasVideo = true;
    if (!keyframe || !video || this.clusterStart < 0) return;
    // The Cluster's first video block: the joiner starts at the Cluster (its audio too).
    if (first) this.cutHere(this.clusterStart, undefined);
    else if (this.videoTracks.size === 0)
      return; // audio only: Cluster starts are enough
    else if (this.clusterTimecode >= 0) this.cutHere(start, clusterHeader(this.clusterTimecode));
  }

  private cutHere(at: number, resume: Buffer | undefined): void {
    if (at <= this.cutAt) return;
    this.cutAt = at;
    this.resume = resume;
  }

  /** Leaves the containers of known size that end here. */
  private closeEnded(): void {
    const ends = this.stackEnd;
    while (ends.length > 0 && ends[ends.length - 1]! <= this.pos) this.leave();
  }

  /** Leaves the containers of unknown size that `id` cannot be a child of. */
  private closeUnknown(id: number): void {
    for (;;) {
      const depth = this.stackId.length;
      if (depth === 0 || this.stackEnd[depth - 1] !== Infinity) return;
      const parent = this.stackId[depth - 1];
      const top = id === EBML || id === SEGMENT;
      if (parent === CLUSTER ? top || SEGMENT_CHILDREN.has(id) : parent === SEGMENT && top) this.leave();
      else return;
    }
  }

  private leave(): void {
    const id = this.stackId.pop();
    this.stackEnd.pop();
    if (id === BLOCK_GROUP && this.groupTrack >= 0)
      this.blockSeen(this.groupTrack, !this.groupRef, this.groupStart);
  }

  /** Until the first Cluster, the chunks' bytes are the initialisation segment. */
  private keepInit(chunk: Buffer, at: number): void {
    const parts = this.initParts;
    if (!parts) return;
    if (this.failed && this.initEndAt < 0) {
      this.initParts = undefined;
      return;
    }
    const end = this.initEndAt >= 0 ? this.initEndAt - at : chunk.length;
    if (end > 0) {
      parts.push(end === chunk.length ? chunk : chunk.subarray(0, end));
      this.initBytes += end;
    }
    if (this.initEndAt >= 0) {
      // The Cluster's id may have begun in an earlier chunk: the length trims it off.
      this.init = Buffer.concat(parts, this.initEndAt);
      this.initParts = undefined;
      this.cutHere(this.initEndAt, undefined);
    } else if (this.initBytes > MAX_INIT_BYTES) {
      this.fail();
    }
  }

  private fail(): void {
    this.failed = true;
    this.tracks = undefined;
  }
}

/** A Cluster of unknown size with this Timecode, for a cut inside a Cluster. */
function clusterHeader(timecode: number): Buffer {
  const b = Buffer.from([
    0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xe7, 0x86, 0, 0, 0, 0, 0, 0,
  ]);
  b.writeUIntBE(timecode, 14, 6);
  return b;
}

/** Length of a vint from its first byte (1..8), 0 when the byte cannot start one. */
function vintLength(b: number): number {
  if (b === 0) return 0;
  return Math.clz32(b) - 23;
}

function vintValue(buf: Buffer, at: number, len: number): number {
  let v = buf[at]! & (0xff >> len);
  for (let k = 1; k < len; k++) v = v * 256 + buf[at + k]!;
  return v;
}

/** Track numbers whose TrackType is video; empty when Tracks cannot be read. */
function videoTrackNumbers(tracks: Buffer): Set<number> {
  const video = new Set<number>();
  const ok = children(tracks, 0, tracks.length, (id, start, end) => {
    if (id !== TRACK_ENTRY) return true;
    let number = -1;
    let type = -1;
    const entryOk = children(tracks, start, end, (cid, s, e) => {
      if (cid === TRACK_NUMBER) number = uint(tracks, s, e);
      else if (cid === TRACK_TYPE) type = uint(tracks, s, e);
      return true;
    });
    if (entryOk && type === VIDEO_TRACK && number >= 0) video.add(number);
    return entryOk;
  });
  return ok ? video : new Set();
}

/** Walks the elements in buf[start, end); false on anything malformed. */
function children(
  buf: Buffer,
  start: number,
  end: number,
  visit: (id: number, dataStart: number, dataEnd: number) => boolean,
): boolean {
  let p = start;
  while (p < end) {
    const idLen = vintLength(buf[p]!);
    if (idLen === 0 || idLen > 4 || p + idLen > end) return false;
    let id = 0;
    for (let k = 0; k < idLen; k++) id = id * 256 + buf[p + k]!;
    p += idLen;
    if (p >= end) return false;
    const sizeLen = vintLength(buf[p]!);
    if (sizeLen === 0 || p + sizeLen > end) return false;
    const size = vintValue(buf, p, sizeLen);
    p += sizeLen;
    if (p + size > end) return false;
    if (!visit(id, p, p + size)) return false;
    p += size;
  }
  return true;
}

function uint(buf: Buffer, start: number, end: number): number {
  if (end - start > 6) return -1;
  let v = 0;
  for (let p = start; p < end; p++) v = v * 256 + buf[p]!;
  return v;
}
