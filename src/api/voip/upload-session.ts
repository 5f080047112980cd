import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { PcmInput } from '../../media/audio/pcm-input.js';

/**
 * Feeds a WebSocket's messages (binary, or text as the original allowed) of raw PCM to
 * a speaker's jitter buffer. Live audio: if the client sends faster than real time the
 * oldest audio is dropped. A message above `maxMessageBytes` closes with 1009.
 */
export function uploadFromWebSocket(
  socket: WebSocket,
  input: PcmInput,
  maxMessageBytes: number,
  onEnd: () => void,
): () => void {
  let ended = false;
  const stop = () => {
    if (ended) return;
    ended = true;
    if (socket.readyState === socket.OPEN) socket.close(1000, 'upload ended');
    onEnd();
  };
  socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const chunk = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data);
    if (chunk.length > maxMessageBytes) {
      socket.close(1009, 'message too big');
      return;
    }
    input.write(chunk);
  });
  socket.once('close', stop);
  socket.on('error', stop);
  return stop;
}

/**
 * Feeds a streaming HTTP request body (curl, `ffmpeg -method POST`) to a speaker. A
 * body is often a file sent as fast as the network allows, so it is paced: reading
 * pauses while more than half the buffer is waiting, and the audio plays in real time.
 * `onEnd` gets whether the body was read to its end.
 */
export function uploadFromRequest(
  req: IncomingMessage,
  input: PcmInput,
  onEnd: (complete: boolean) => void,
): () => void {
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const high = input.capacityMs / 2;
  const stop = (complete = false) => {
    if (ended) return;
    ended = true;
    if (timer) clearTimeout(timer);
    if (!complete) req.destroy();
    onEnd(complete);
  };
  const drain = () => {
    timer = undefined;
    if (ended) return;
    if (input.bufferedMs > high / 2) timer = setTimeout(drain, 20);
    else req.resume();
  };
  req.on('data', (chunk: Buffer) => {
    input.write(chunk);
    if (input.bufferedMs > high && !timer) {
      req.pause();
      timer = setTimeout(drain, 20);
    }
  });
  // Played out what is buffered before reporting the end.
  req.once('end', () => {
    const wait = () => (ended ? undefined : input.bufferedMs >= 20 ? setTimeout(wait, 20) : stop(true));
    wait();
  });
  req.once('close', () => {
    if (!req.complete) stop(false);
  });
  req.on('error', () => stop(false));
  return () => stop(false);
}
