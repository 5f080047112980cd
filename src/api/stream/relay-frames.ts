import { z } from 'zod';
import { subjectToken } from '../../ports/bus/bus.js';

/*
 * What crosses the bus for a channel published on one node and received on others.
 *
 * `chorus.stream.channel.<id>.data` (the publisher's node publishes, nodes with receivers
 * subscribe) carries, in publishing order (one publisher, one subject: NATS keeps it):
 * - control frames, JSON (first byte `{`): `start`, `alive` (every second while
 *   publishing), `end`, and `replay` / `replayed` around a replay meant for one node;
 * - chunk frames, binary: a 10-byte header (kind, flags, session, sequence) and the
 *   bytes. A chunk larger than FRAGMENT_BYTES goes as several frames in a row, all but
 *   the last flagged MORE (NATS refuses messages over its max_payload, 1 MiB by default).
 *
 * `chorus.stream.channel.<id>.interest` (nodes with receivers publish every 2 s, the
 * publisher's node subscribes): which node wants the channel and which session it has
 * followed from the start (a node that has not is sent a replay of the cache).
 */

export function dataSubject(channel: string): string {
  return `chorus.stream.channel.${subjectToken(channel)}.data`;
}

export function interestSubject(channel: string): string {
  return `chorus.stream.channel.${subjectToken(channel)}.interest`;
}

/** Largest piece of a chunk in one bus message (NATS's default max_payload is 1 MiB). */
export const FRAGMENT_BYTES = 512 * 1024;
export const CHUNK_HEADER_BYTES = 10;
/** A live chunk, numbered in the session. */
export const LIVE = 1;
/** A chunk of a replay (the cache, for a node that starts following). */
export const REPLAY = 2;
/** More frames of the same chunk follow. */
const MORE = 1;
const JSON_START = 0x7b; // '{'

const SESSION = z.number().int().min(1).max(0xffffffff);
const NODE = z.string().min(1).max(256);
const INSTANCE = z.string().max(256);
const KEY = z.string().max(1024);

export const CONTROL_FRAME = z.discriminatedUnion('t', [
  z.object({ t: z.enum(['start', 'alive']), session: SESSION, node: NODE, instance: INSTANCE, key: KEY }),
  z.object({ t: z.literal('end'), session: SESSION }),
  z.object({
    t: z.literal('replay'),
    session: SESSION,
    node: NODE,
    instance: INSTANCE,
    key: KEY,
    to: NODE,
    toInstance: INSTANCE,
  }),
  z.object({
    t: z.literal('replayed'),
    session: SESSION,
    to: NODE,
    toInstance: INSTANCE,
    /** The sequence number the next live chunk will carry. */
    next: z.number().int().min(0).max(0xffffffff),
  }),
]);
export type ControlFrame = z.infer<typeof CONTROL_FRAME>;

export const INTEREST = z.object({
  node: NODE,
  instance: INSTANCE,
  /** false: this node has no receivers of the channel any more. */
  on: z.boolean(),
  /** The session this node has followed since its replay, or null. */
  synced: SESSION.nullable(),
});
export type Interest = z.infer<typeof INTEREST>;

export function isControlFrame(data: Uint8Array): boolean {
  return data[0] === JSON_START;
}

/** A random session number (never 0): tells one publishing of a channel from the next. */
export function newSession(): number {
  return 1 + Math.floor(Math.random() * 0xfffffffe);
}

/**
 * Calls `send` with the frames of one chunk: one frame, or FRAGMENT_BYTES pieces. Each
 * frame is a new buffer (the bus takes one payload per message).
 */
export function chunkFrames(
  kind: number,
  session: number,
  seq: number,
  chunk: Buffer,
  send: (frame: Buffer) => void,
): void {
  let at = 0;
  do {
    const n = Math.min(FRAGMENT_BYTES, chunk.length - at);
    const frame = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + n);
    frame[0] = kind;
    frame[1] = at + n < chunk.length ? MORE : 0;
    frame.writeUInt32BE(session, 2);
    frame.writeUInt32BE(seq >>> 0, 6);
    chunk.copy(frame, CHUNK_HEADER_BYTES, at, at + n);
    send(frame);
    at += n;
  } while (at < chunk.length);
}

/** A chunk frame's header, read in place (one per node, reused: no allocation per frame). */
export class ChunkFrameHeader {
  kind = 0;
  more = false;
  session = 0;
  seq = 0;

  /** False when `data` is not a chunk frame (too short, unknown kind or flags). */
  read(data: Uint8Array): boolean {
    if (data.length < CHUNK_HEADER_BYTES) return false;
    const kind = data[0]!;
    const flags = data[1]!;
    if ((kind !== LIVE && kind !== REPLAY) || (flags & ~MORE) !== 0) return false;
    this.kind = kind;
    this.more = (flags & MORE) !== 0;
    this.session = ((data[2]! << 24) | (data[3]! << 16) | (data[4]! << 8) | data[5]!) >>> 0;
    this.seq = ((data[6]! << 24) | (data[7]! << 16) | (data[8]! << 8) | data[9]!) >>> 0;
    return true;
  }
}

/**
 * Puts a chunk's frames back together. Frames of one chunk arrive in a row (the sender
 * writes them in one go on one subject), so one chunk at a time is assembled; a frame
 * that does not continue it (another kind, session or sequence) drops the part so far.
 */
export class ChunkAssembler {
  private parts: Buffer[] = [];
  private bytes = 0;
  private kind = 0;
  private session = 0;
  private seq = 0;

  constructor(private readonly maxBytes: number) {}

  /** Set by `add` when something was dropped (a part without its end, or a chunk over the limit). */
  broken = false;

  /** The whole chunk once its last frame is in, else undefined (see `broken`). */
  add(h: ChunkFrameHeader, data: Uint8Array): Buffer | undefined {
    const body = Buffer.from(
      data.buffer,
      data.byteOffset + CHUNK_HEADER_BYTES,
      data.length - CHUNK_HEADER_BYTES,
    );
    this.broken = false;
    if (this.parts.length > 0 && (h.kind !== this.kind || h.session !== this.session || h.seq !== this.seq)) {
      this.reset();
      this.broken = true;
    }
    if (this.parts.length === 0 && !h.more) return body;
    this.bytes += body.length;
    if (this.bytes > this.maxBytes) {
      this.reset();
      this.broken = true;
      return undefined;
    }
    this.parts.push(body);
    this.kind = h.kind;
    this.session = h.session;
    this.seq = h.seq;
    if (h.more) return undefined;
    const chunk = Buffer.concat(this.parts, this.bytes);
    this.reset();
    return chunk;
  }

  reset(): void {
    this.parts = [];
    this.bytes = 0;
  }
}
