import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { FeedSink } from '../../media/audio/mix-feed.js';
import { readMix, type MixSource } from '../../media/audio/mix-source.js';
import { FRAME_MS, SAMPLE_RATE } from '../../media/audio/pcm-frame.js';
import type { ListenFormat } from './voip-wire.js';

/** Audio that may wait for one slow listener before it is dropped: 2 s of WAV. */
const MAX_QUEUED_BYTES = 2 * SAMPLE_RATE * 2;

/**
 * Writes the head of a listening response, now. The body is not chunked: it ends when
 * the connection closes (`Connection: close`, as HTTP/1.1 allows), so its bytes are the
 * shared pages or PCM chunks themselves and go straight to the socket (see
 * `streamToResponse`). An endless stream never reused its connection anyway.
 */
export function startAudioResponse(res: ServerResponse, format: ListenFormat): void {
  res.useChunkedEncodingByDefault = false;
  res.writeHead(200, {
    'Content-Type': format === 'wav' ? 'audio/wav' : 'audio/ogg',
    'Cache-Control': 'no-store',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
}

/**
 * Streams the mix `me` must hear to an HTTP response until `stop()` or the client goes:
 * WAV (the endless header, then raw PCM) or Ogg/Opus (header pages, the mix's recent
 * packets so browsers start at once, then a page every `flushTicks` ticks). Every
 * listener of the same mix gets the same page (or PCM chunk) Buffer: see MixFeed.
 * `onEnd` runs once either way.
 */
export function streamToResponse(
  res: ServerResponse,
  format: ListenFormat,
  source: MixSource,
  me: string,
  flushTicks: number,
  onEnd: () => void,
): (() => void) & { wake?: () => Promise<void> } {
  let ended = false;
  // Writes dominate the cost of HTTP listeners: one per flush (VOIP_HTTP_FLUSH_MS), the
  // Ogg page or PCM chunk shared by the mix's listeners. Once the head is out (see
  // startAudioResponse), each goes to the socket itself: ServerResponse.write corks the
  // socket and uncorks it on a nextTick per write, a fifth of the cost of 2,000
  // listeners (#17.3); chunked encoding added two more buffers per write.
  const socket = res.headersSent && !res.chunkedEncoding ? res.socket : null;
  const out: { readonly writableLength: number; write(chunk: Uint8Array): unknown } = socket ?? res;
  const sink: FeedSink = {
    write: (chunk) => {
      // Between a destroy and its 'close' event, pages keep coming: drop them.
      if (res.destroyed || res.writableEnded || socket?.destroyed) return;
      if (out.writableLength > MAX_QUEUED_BYTES) {
        // Not reading: the client is gone or too slow to follow live audio.
        res.destroy();
        return;
      }
      out.write(chunk);
    },
  };
  const reader = readMix(source, me, format, sink, flushTicks);
  const stop = () => {
    if (ended) return;
    ended = true;
    reader.close();
    if (!res.writableEnded) res.end();
    onEnd();
  };
  res.once('close', stop);
  res.on('error', stop);
  if (!socket) return stop;
  retireRequest(res.req, () => stopReading(socket));
  const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
  return Object.assign(stop, { wake: () => wake(socket, closed) });
}

/** How long a woken listener's connection is given to show it is gone. */
const WAKE_MS = 250;

/**
 * Reads the listener's socket again, and resolves once its stream has ended or after
 * WAKE_MS: a hang-up not yet found by a write (stopReading) shows at the next read. For
 * a member coming back at once, whose new stream would otherwise find the slot still
 * held by the old one ("user already connected").
 */
function wake(socket: Socket, closed: Promise<void>): Promise<void> {
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStart?: () => number } })._handle;
  if (!socket.destroyed && typeof handle?.readStart === 'function' && !handle.reading) {
    handle.reading = true;
    handle.readStart();
  }
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    closed,
    new Promise<void>((resolve) => (timer = setTimeout(resolve, WAKE_MS))),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The low-latency path: raw Opus packets over a WebSocket, one binary message per
 * 20 ms, after a text message describing them. No backlog: this is for clients that
 * decode themselves (WebCodecs) and want live audio, not a head start.
 */
export function streamToWebSocket(
  socket: WebSocket,
  source: MixSource,
  me: string,
  onEnd: () => void,
): () => void {
  let ended = false;
  const reader = readMix(
    source,
    me,
    'opus',
    {
      write: (packet) => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > 64 * 1024) {
          socket.close(1013, 'listener too slow');
          return;
        }
        socket.send(packet);
      },
    },
    1,
  );
  const stop = () => {
    if (ended) return;
    ended = true;
    reader.close();
    if (socket.readyState === socket.OPEN) socket.close(1000, 'audio ended');
    onEnd();
  };
  socket.once('close', stop);
  // Sent before any packet: packets come on the mixer's next tick, never during `readMix`.
  socket.send(
    JSON.stringify({
      codec: 'opus',
      sampleRate: SAMPLE_RATE,
      channels: 1,
      frameMs: FRAME_MS,
      preSkip: reader.preSkip,
    }),
  );
  return stop;
}

/**
 * Marks an endless response's request as done with, once it is read to its end, then
 * calls `then`. When the connection closes, Node's http server destroys each request
 * whose response has not finished with a new ECONNRESET "aborted" error, and destroying
 * a stream with an error formats that error's stack (`err.stack`, in
 * node:internal/streams/destroy): for a room of 2,000 listeners hanging up, thousands of
 * stacks in one turn, for an end that is expected (#17.3). A request already destroyed is
 * left alone by that path. Its socket stays open: a request read to its end does not take
 * its socket down with it.
 */
function retireRequest(req: IncomingMessage, then: () => void): void {
  if (req.destroyed) return;
  const retire = () => {
    req.destroy();
    then();
  };
  if (req.readableEnded) return retire();
  if (!req.complete) return; // a body still coming (not on these routes): left as it is
  req.once('end', retire);
  req.resume();
}

/**
 * Stops reading a listener's socket: after its request it sends nothing, and a client
 * that hangs up is then found by the next write to it, which fails (EPIPE or ECONNRESET),
 * instead of by the read that sees its reset. Writes go a slice of listeners per turn
 * (MixFeed), so 2,000 listeners hanging up at once are found, and their sockets closed
 * by Node (an error, its stack, the close cascade: 50-60 us each here), a slice per turn;
 * read, their resets all came in one poll phase of the event loop and were handled in
 * that one turn (70-140 ms of CPU for 1,000-2,000 sockets, #17.3). A hang-up is noticed
 * one flush later at most. Node has no public call for this (`pause()` stops the flow to
 * JavaScript, not the reads), hence the handle; without one it is left reading.
 */
function stopReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } })._handle;
  if (socket.destroyed || typeof handle?.readStop !== 'function') return;
  handle.reading = false;
  handle.readStop();
}
