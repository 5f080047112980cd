import { isUtf8 } from 'node:buffer';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';

/**
 * The parts of ws's Receiver (a Writable fed by ws's socket 'data' listener) read here.
 * ws 8.23.0 exactly (package.json pins it): its private fields are not an API. Should a
 * version rename them, `DirectTextFrameReader.install` finds them missing and leaves the socket
 * to ws (and test/integration/signal-direct-text-frames.test.ts fails).
 */
interface WsReceiver {
  /** 0: GET_INFO, between frames. */
  _state: number;
  /** Bytes of a frame read but not yet parsed. */
  _bufferedBytes: number;
  /** The opcode of a fragmented message under way, 0 if none. */
  _fragmented: number;
  /** The last frame's opcode; 8 once a close frame was read (ws ignores the rest). */
  _opcode: number;
  _errored: boolean;
  _maxPayload: number;
  _isServer: boolean;
  _skipUTF8Validation: boolean;
  _allowSynchronousEvents: boolean;
  write: (
    this: WsReceiver,
    chunk: Buffer,
    encoding?: BufferEncoding,
    cb?: (err?: Error | null) => void,
  ) => boolean;
}

interface WsSocket {
  _receiver: WsReceiver | null;
  /** 1: OPEN. */
  _readyState: number;
  _paused: boolean;
}

/** How often the direct path took a read and how often it left one to ws (for tests and benches). */
export const directTextFrameCounts = { frames: 0, reads: 0, leftToWs: 0 };

/** A Buffer view without Buffer.subarray's argument handling (what ws's own views are). */
const FastBuffer = (Buffer as unknown as Record<symbol, unknown>)[Symbol.species] as new (
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
) => Buffer;

/**
 * Installs the direct read of whole text frames on the sockets of one surface (see
 * `install`). It keeps what it learns from the first socket: ws's `kWebSocket` symbol
 * (receiver -> its WebSocket), ws's Receiver.prototype and the one put in its place.
 */
export class DirectTextFrameReader {
  private kWebSocket: symbol | undefined;
  private wsPrototype: object | undefined;
  private directPrototype: object | undefined;
  /** Said once: a socket the direct read did not fit (another ws version). */
  private refusalSaid = false;

  /** `log`, when given, is told once that a socket did not fit. */
  constructor(private readonly log?: Logger) {}

  /**
   * Lets `socket`'s reads of whole, final, masked text frames reach its 'message' listeners
   * without ws's Receiver: a read (one 'data' chunk) made only of such frames, each within
   * the receiver's max payload and valid UTF-8, is unmasked in place and each payload is
   * emitted as a Buffer view into the read, in order, as ws would; any other read (a
   * partial frame, a control frame, a fragment, a binary or oversize frame, invalid UTF-8,
   * a receiver mid-frame or closing) goes to ws's receiver untouched, which answers as
   * always (1002, 1007, 1009, pings, the close).
   *
   * Why: ws's receiver is a Writable that makes about nine Buffer views a frame, unmasks in
   * a JavaScript loop and ends each write with a tick: 15 % of a forwarded message's CPU
   * and 1.45 KiB of its allocation (#17.1, BENCHMARKS.md session 12); the common read is
   * one or a few small whole text frames. Read this way (bench/signal/read-path.ts, 8
   * frames a read) a message costs 0.5-0.75x the server CPU and 1.1 KiB less young
   * generation (BENCHMARKS.md session 13).
   *
   * How: the receiver's prototype is swapped for one whose `write` (what ws's socket
   * 'data' listener calls) tries the direct path first. Nothing is added to the receiver
   * (an idle connection stays as small) and ws keeps its own listeners, which it removes
   * itself after a close frame or an error. Returns false, changing nothing, when the
   * socket does not fit (an extension negotiated, a client socket, ws's internals not as
   * expected).
   */
  install(socket: WebSocket): boolean {
    if (this.fitted(socket)) return true;
    if (this.log && !this.refusalSaid) {
      // Every read still works, through ws; only the saving is lost.
      this.refusalSaid = true;
      this.log.warn('signal: whole text frames cannot be read directly; all reads go through ws');
    }
    return false;
  }

  private fitted(socket: WebSocket): boolean {
    const receiver = (socket as unknown as WsSocket)._receiver;
    if (!receiver) return false;
    this.kWebSocket ??= Object.getOwnPropertySymbols(receiver).find((s) => s.description === 'websocket');
    const k = this.kWebSocket;
    if (k === undefined || socket.extensions !== '' || !fits(receiver, socket, k)) return false;
    const proto = Object.getPrototypeOf(receiver) as object;
    if (proto === this.directPrototype) return true;
    if (this.wsPrototype === undefined) {
      this.wsPrototype = proto;
      this.directPrototype = makeDirectPrototype(proto as WsReceiver, k);
    } else if (proto !== this.wsPrototype) return false; // a second copy of ws: left alone
    Object.setPrototypeOf(receiver, this.directPrototype!);
    return true;
  }
}

/** Whether `receiver` has the fields and settings the direct path reads, as ws 8.23 sets them. */
function fits(receiver: WsReceiver, socket: WebSocket, kWebSocket: symbol): boolean {
  const ws = socket as unknown as WsSocket;
  return (
    (receiver as unknown as Record<symbol, unknown>)[kWebSocket] === socket &&
    typeof receiver.write === 'function' &&
    receiver._state === 0 &&
    receiver._bufferedBytes === 0 &&
    receiver._fragmented === 0 &&
    receiver._errored === false &&
    typeof receiver._opcode === 'number' &&
    typeof receiver._maxPayload === 'number' &&
    receiver._isServer === true &&
    receiver._skipUTF8Validation === false &&
    receiver._allowSynchronousEvents === true &&
    ws._readyState === 1 &&
    ws._paused === false
  );
}

function makeDirectPrototype(wsProto: WsReceiver, kWebSocket: symbol): object {
  const wsWrite = wsProto.write;
  const proto = Object.create(wsProto) as WsReceiver;
  // ws's socket listener calls write(chunk): one argument. Any other call is ws's own.
  proto.write = function write(this: WsReceiver, chunk, encoding, cb) {
    if (encoding === undefined && cb === undefined && readDirectly(this, chunk, kWebSocket)) return true;
    return wsWrite.call(this, chunk, encoding, cb);
  };
  return proto;
}

/** The first byte of a whole text frame: FIN, no RSV bits, opcode 1. */
const FIN_TEXT = 0x81;
/** The smallest masked frame: two bytes of header and the mask. */
const MIN_HEADER = 6;

/**
 * Delivers `chunk` if it is whole, final, masked text frames only; false (the chunk
 * untouched) otherwise. The read is judged whole before any of it is delivered, so none
 * is half handled: first the frames' bounds, then each payload unmasked and its UTF-8
 * checked (a bad one masks back what was unmasked and leaves all to ws, which answers
 * 1007 after emitting the frames before it, as it always did), then the emits.
 * No allocation but the payload views.
 */
function readDirectly(receiver: WsReceiver, chunk: Buffer, kWebSocket: symbol): boolean {
  const ws = (receiver as unknown as Record<symbol, WsSocket & WebSocket>)[kWebSocket]!;
  if (
    receiver._state !== 0 ||
    receiver._bufferedBytes !== 0 ||
    receiver._fragmented !== 0 ||
    receiver._opcode === 8 ||
    receiver._errored ||
    ws._readyState !== 1 ||
    ws._paused ||
    !Buffer.isBuffer(chunk)
  ) {
    directTextFrameCounts.leftToWs++;
    return false;
  }
  const length = chunk.length;
  const max = receiver._maxPayload;
  // 1. Bounds: every frame whole, text, final, masked, within the limit.
  let at = 0;
  while (at < length) {
    if (length - at < MIN_HEADER || chunk[at] !== FIN_TEXT) return leaveToWs();
    const second = chunk[at + 1]!;
    if (second < 0x80) return leaveToWs(); // unmasked: ws closes with 1002
    let size = second & 0x7f;
    let header = MIN_HEADER;
    if (size === 126) {
      if (length - at < MIN_HEADER + 2) return leaveToWs();
      size = (chunk[at + 2]! << 8) | chunk[at + 3]!;
      header += 2;
    } else if (size === 127) return leaveToWs();
    if (max > 0 && size > max) return leaveToWs(); // ws closes with 1009
    at += header + size;
  }
  if (at !== length) return leaveToWs(); // the last frame continues in a later read
  // 2. Unmask in place (the read is this socket's own Buffer, as ws unmasks its views
  // of it) and check UTF-8: JSON is mostly ASCII, seen while unmasking, so the native
  // check runs only for payloads with a byte over 0x7f.
  at = 0;
  while (at < length) {
    const start = payloadStart(chunk, at);
    const end = start + payloadSize(chunk, at);
    const m0 = chunk[start - 4]!;
    const m1 = chunk[start - 3]!;
    const m2 = chunk[start - 2]!;
    const m3 = chunk[start - 1]!;
    let high = 0;
    let i = start;
    for (; i + 3 < end; i += 4) {
      const b0 = chunk[i]! ^ m0;
      const b1 = chunk[i + 1]! ^ m1;
      const b2 = chunk[i + 2]! ^ m2;
      const b3 = chunk[i + 3]! ^ m3;
      chunk[i] = b0;
      chunk[i + 1] = b1;
      chunk[i + 2] = b2;
      chunk[i + 3] = b3;
      high |= b0 | b1 | b2 | b3;
    }
    for (let k = 0; i < end; i++, k++) {
      const b = chunk[i]! ^ chunk[start - 4 + k]!;
      chunk[i] = b;
      high |= b;
    }
    if (high & 0x80 && !isUtf8(new FastBuffer(chunk.buffer, chunk.byteOffset + start, end - start))) {
      remask(chunk, end);
      return leaveToWs();
    }
    at = end;
  }
  // 3. Deliver, in order, as ws's 'message' event does (text: isBinary false). A listener
  // that closes the socket does not stop the rest of the read: nor does ws.
  directTextFrameCounts.reads++;
  at = 0;
  while (at < length) {
    const start = payloadStart(chunk, at);
    const size = payloadSize(chunk, at);
    directTextFrameCounts.frames++;
    ws.emit('message', new FastBuffer(chunk.buffer, chunk.byteOffset + start, size), false);
    at = start + size;
  }
  return true;
}

function leaveToWs(): false {
  directTextFrameCounts.leftToWs++;
  return false;
}

/** Where the payload of the frame at `at` (bounds checked) starts: after the mask. */
function payloadStart(chunk: Buffer, at: number): number {
  return at + ((chunk[at + 1]! & 0x7f) === 126 ? 8 : 6);
}

function payloadSize(chunk: Buffer, at: number): number {
  const size = chunk[at + 1]! & 0x7f;
  return size === 126 ? (chunk[at + 2]! << 8) | chunk[at + 3]! : size;
}

/** Masks again (XOR is its own inverse) the payloads unmasked before `end`. */
function remask(chunk: Buffer, end: number): void {
  let at = 0;
  while (at < end) {
    const start = payloadStart(chunk, at);
    const stop = start + payloadSize(chunk, at);
    for (let i = start; i < stop; i++) chunk[i] = chunk[i]! ^ chunk[start - 4 + ((i - start) & 3)]!;
    at = stop;
  }
}
