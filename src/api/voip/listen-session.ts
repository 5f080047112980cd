import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { AudioMixer, MixFrame, MixSubscription } from '../../media/audio/audio-mixer.js';
import { OggOpusWriter } from '../../media/audio/ogg-opus-writer.js';
import { FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE } from '../../media/audio/pcm-frame.js';
import { endlessWavHeader } from '../../media/audio/wav-header.js';
import type { ListenFormat } from './voip-wire.js';

/** Audio that may wait for one slow listener before it is dropped: 2 s of WAV. */
const MAX_QUEUED_BYTES = 2 * SAMPLE_RATE * 2;

/**
 * Streams a mix to an HTTP response until `stop()` or the client goes: WAV (the
 * endless header, then raw PCM) or Ogg/Opus (header pages, the mix's recent packets so
 * browsers start at once, then one page per 20 ms). `onEnd` runs once either way.
 */
export function streamToResponse(
  res: ServerResponse,
  format: ListenFormat,
  mixer: AudioMixer,
  me: string,
  onEnd: () => void,
): () => void {
  let sub: MixSubscription | undefined;
  let ended = false;
  const stop = () => {
    if (ended) return;
    ended = true;
    sub?.close();
    if (!res.writableEnded) res.end();
    onEnd();
  };
  res.once('close', stop);
  res.once('error', stop);
  const write = (chunk: Buffer) => {
    if (res.writableLength > MAX_QUEUED_BYTES) {
      // Not reading: the client is gone or too slow to follow live audio.
      res.destroy();
      return;
    }
    res.write(chunk);
  };
  if (format === 'wav') {
    res.write(endlessWavHeader());
    // The mix's PCM buffer is reused every tick: each write gets a copy.
    sub = mixer.listen({ onFrame: (f: MixFrame) => write(Buffer.from(f.pcm)) }, me);
  } else {
    // Frames may arrive once subscribed; the writer needs the subscription's pre-skip.
    const ogg: { writer?: OggOpusWriter } = {};
    sub = mixer.listen(
      { onFrame: (f: MixFrame) => ogg.writer && write(ogg.writer.audio([f.opus()], FRAME_SAMPLES)) },
      me,
    );
    const writer = new OggOpusWriter(sub.preSkip);
    ogg.writer = writer;
    res.write(writer.headers());
    const backlog = sub.backlog();
    if (backlog.length > 0) res.write(writer.audio(backlog, FRAME_SAMPLES));
  }
  return stop;
}

/**
 * The low-latency path: raw Opus packets over a WebSocket, one binary message per
 * 20 ms, after a text message describing them. No backlog: this is for clients that
 * decode themselves (WebCodecs) and want live audio, not a head start.
 */
export function streamToWebSocket(
  socket: WebSocket,
  mixer: AudioMixer,
  me: string,
  onEnd: () => void,
): () => void {
  let ended = false;
  const sub = mixer.listen(
    {
      onFrame: (f: MixFrame) => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > 64 * 1024) {
          socket.close(1013, 'listener too slow');
          return;
        }
        socket.send(f.opus());
      },
    },
    me,
  );
  const stop = () => {
    if (ended) return;
    ended = true;
    sub.close();
    if (socket.readyState === socket.OPEN) socket.close(1000, 'audio ended');
    onEnd();
  };
  socket.once('close', stop);
  socket.send(
    JSON.stringify({
      codec: 'opus',
      sampleRate: SAMPLE_RATE,
      channels: 1,
      frameMs: FRAME_MS,
      preSkip: sub.preSkip,
    }),
  );
  return stop;
}
