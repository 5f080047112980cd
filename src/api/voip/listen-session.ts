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
 * browsers start at once, then a page every `flushTicks` ticks). `onEnd` runs once either way.
 */
export function streamToResponse(
  res: ServerResponse,
  format: ListenFormat,
  mixer: Pick<AudioMixer, 'listen'>,
  me: string,
  flushTicks: number,
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
  res.on('error', stop);
  const write = (chunk: Buffer) => {
    // Between a destroy and its 'close' event, frames keep coming: drop them.
    if (res.destroyed || res.writableEnded) return;
    if (res.writableLength > MAX_QUEUED_BYTES) {
      // Not reading: the client is gone or too slow to follow live audio.
      res.destroy();
      return;
    }
    res.write(chunk);
  };
  // Writes (syscalls) dominate the cost of HTTP listeners: `flushTicks` frames go out
  // together, one Ogg page or one PCM chunk (see VOIP_HTTP_FLUSH_MS).
  if (format === 'wav') {
    res.write(endlessWavHeader());
    const pending = Buffer.alloc(flushTicks * FRAME_SAMPLES * 2);
    let at = 0;
    sub = mixer.listen(
      {
        onFrame: (f: MixFrame) => {
          // The mix's PCM buffer is reused every tick: copy it out.
          f.pcm.copy(pending, at);
          at += f.pcm.length;
          if (at < pending.length) return;
          write(Buffer.from(pending));
          at = 0;
        },
      },
      me,
    );
  } else {
    // Frames may arrive once subscribed; the writer needs the subscription's pre-skip.
    const ogg: { writer?: OggOpusWriter } = {};
    let pending: Uint8Array[] = [];
    sub = mixer.listen(
      {
        onFrame: (f: MixFrame) => {
          if (!ogg.writer) return;
          pending.push(f.opus());
          if (pending.length < flushTicks) return;
          write(ogg.writer.audio(pending, FRAME_SAMPLES));
          pending = [];
        },
      },
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
  mixer: Pick<AudioMixer, 'listen'>,
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
