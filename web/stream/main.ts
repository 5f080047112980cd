import { StreamConnection, webmMimeFromHeader } from '../sdk/stream-client.js';
import { warnIfInsecure } from '../sdk/secure-context.js';
import { reconnector, ServerAway } from '../sdk/reconnect.js';

// First, before anything reaches for what an insecure context hides.
warnIfInsecure('the camera and microphone (publishing; watching a channel still works)');

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const logList = $('log');
function log(text: string): void {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  logList.prepend(li);
}
const kbps = (bytes: number, seconds: number): string =>
  `${((bytes * 8) / 1000 / seconds).toFixed(0)} kbit/s`;

// ---- publishing ----
let publisher: StreamConnection | undefined;
let recorder: MediaRecorder | undefined;
let fileTimer: number | undefined;
let pubStream: MediaStream | undefined;
/** The user asked to publish (until Stop): a connection lost meanwhile is reconnected. */
let pubWanted = false;

const source = $<HTMLSelectElement>('pub-source');
source.addEventListener('change', () => $('pub-file').classList.toggle('hidden', source.value !== 'file'));

function recorderMime(): string {
  for (const m of ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp8', 'video/webm']) {
    if (MediaRecorder.isTypeSupported(m)) return m;
  }
  return '';
}

/** Opens a connection; true once open, false when it closed first (refused, or no server). */
async function open(conn: StreamConnection): Promise<boolean> {
  return conn.opened().then(
    () => true,
    () => false,
  );
}

/** Stops sending (recorder, file timer) without giving up the camera: a reconnect reuses it. */
function stopSending(): void {
  if (recorder?.state === 'recording') recorder.stop();
  recorder = undefined;
  clearInterval(fileTimer);
}

/**
 * The publishing socket closed without Stop: the server went away (its restart), or it
 * refused. A connection that had been open is reconnected; each new connection starts a
 * fresh recording (a WebM stream cannot be joined mid-way) or the file from its start.
 */
const pubAway = reconnector({
  status: (text) => ($('pub-state').textContent = text),
  async rejoin() {
    if (!(await connectPublisher())) throw new ServerAway('refused');
    log('publishing again after reconnecting');
  },
  lost(why) {
    log(`could not publish again: ${why}`);
    stopPublishing();
  },
});

async function connectPublisher(): Promise<boolean> {
  const channel = $<HTMLInputElement>('pub-channel').value.trim();
  const key = $<HTMLInputElement>('pub-key').value.trim();
  const conn = new StreamConnection(channel, key, 'publish');
  let wasOpen = false;
  conn.addEventListener('close', (ev) => {
    if (publisher !== conn && publisher !== undefined) return;
    const { code, reason } = (ev as CustomEvent<{ code: number; reason: string }>).detail;
    publisher = undefined;
    stopSending();
    if (pubWanted && wasOpen) {
      log(`publisher lost the server (${code} ${reason}): reconnecting`);
      pubAway.start();
      return;
    }
    if (pubAway.active) return; // one more refused try while the server comes back
    log(`publisher closed (${code} ${reason || 'refused: channel busy, bad id or key denied'})`);
    stopPublishing();
  });
  if (!(await open(conn))) return false;
  wasOpen = true;
  publisher = conn;
  if (pubStream) {
    recorder = new MediaRecorder(pubStream, { mimeType: recorderMime(), videoBitsPerSecond: 1_500_000 });
    recorder.addEventListener('dataavailable', (ev) => {
      void ev.data.arrayBuffer().then((buf) => conn.send(buf));
    });
    recorder.start(500);
    return true;
  }
  const file = $<HTMLInputElement>('pub-file').files?.[0];
  if (!file) return true;
  const data = new Uint8Array(await file.arrayBuffer());
  const chunk = 64 * 1024;
  let offset = 0;
  // About 3 Mbit/s: one 64 KiB chunk every 170 ms.
  fileTimer = window.setInterval(() => {
    if (offset >= data.length) {
      log('file sent');
      stopPublishing();
      return;
    }
    conn.send(data.subarray(offset, offset + chunk));
    offset += chunk;
  }, 170);
  return true;
}

async function startPublishing(): Promise<void> {
  const channel = $<HTMLInputElement>('pub-channel').value.trim();
  if (source.value === 'camera') {
    try {
      pubStream = await navigator.mediaDevices.getUserMedia({
        video: { width: 640, height: 360 },
        audio: true,
      });
    } catch (err) {
      log(
        err instanceof DOMException && err.name === 'NotAllowedError'
          ? 'camera access was denied'
          : String(err),
      );
      return;
    }
    $<HTMLVideoElement>('pub-preview').srcObject = pubStream;
  } else if (!$<HTMLInputElement>('pub-file').files?.[0]) {
    log('choose a file first');
    return;
  }
  pubWanted = true;
  $('pub-start').classList.add('hidden');
  $('pub-stop').classList.remove('hidden');
  if (!(await connectPublisher())) return; // the close handler said why
  log(`publishing ${channel}`);
}

function stopPublishing(): void {
  pubWanted = false;
  pubAway.cancel();
  stopSending();
  pubStream?.getTracks().forEach((t) => t.stop());
  pubStream = undefined;
  const conn = publisher;
  publisher = undefined;
  conn?.close();
  $('pub-start').classList.remove('hidden');
  $('pub-stop').classList.add('hidden');
}

// ---- watching ----
let player: StreamConnection | undefined;
/** The user asked to watch (until Stop): a connection lost meanwhile is reconnected. */
let playWanted = false;

const playAway = reconnector({
  status: (text) => ($('play-state').textContent = text),
  async rejoin() {
    if (!(await startPlaying())) throw new ServerAway('refused');
    log('watching again after reconnecting');
  },
  lost(why) {
    log(`could not watch again: ${why}`);
    stopPlaying();
  },
});

/** Opens a receiver into a fresh MediaSource (a new connection starts a new stream). */
async function startPlaying(): Promise<boolean> {
  const channel = $<HTMLInputElement>('play-channel').value.trim();
  const key = $<HTMLInputElement>('play-key').value.trim();
  const video = $<HTMLVideoElement>('player');
  const media = new MediaSource();
  video.src = URL.createObjectURL(media);
  const queue: ArrayBuffer[] = [];
  let buffer: SourceBuffer | undefined;

  const pump = (): void => {
    if (!buffer || buffer.updating || queue.length === 0) return;
    try {
      buffer.appendBuffer(queue.shift()!);
    } catch (err) {
      log(`playback error: ${String(err)}`);
    }
  };
  /**
   * The SourceBuffer, once the MediaSource is open and the stream's first chunk (its
   * header, which names the codecs) is here; whichever comes last. Chunks may arrive
   * before the MediaSource opens (a busy page): the type is read from the first one
   * queued, never from a later chunk, which has no header.
   */
  const startBuffer = (): void => {
    if (buffer || media.readyState !== 'open' || queue.length === 0) return;
    const mime = webmMimeFromHeader(new Uint8Array(queue[0]!));
    try {
      buffer = media.addSourceBuffer(mime);
    } catch (err) {
      log(`cannot play ${mime}: ${String(err)}`);
      return;
    }
    buffer.mode = 'sequence';
    buffer.addEventListener('updateend', () => {
      // Stay near the live edge: a late joiner is replayed the whole cache.
      const end = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0;
      if (end - video.currentTime > 3) video.currentTime = end - 0.5;
      pump();
    });
    log(`playing ${mime}`);
  };
  media.addEventListener('sourceopen', () => {
    startBuffer();
    pump();
  });
  const conn = new StreamConnection(channel, key, 'receive');
  playWanted = true;
  let wasOpen = false;
  conn.addEventListener('chunk', (ev) => {
    queue.push((ev as CustomEvent<ArrayBuffer>).detail);
    startBuffer();
    pump();
  });
  conn.addEventListener('error-text', (ev) => log((ev as CustomEvent<string>).detail));
  conn.addEventListener('close', (ev) => {
    if (player !== conn && player !== undefined) return;
    player = undefined;
    const { code, reason } = (ev as CustomEvent<{ code: number; reason: string }>).detail;
    if (playWanted && wasOpen) {
      log(`player lost the server (${code} ${reason}): reconnecting`);
      playAway.start();
      return;
    }
    if (playAway.active) return;
    log(`player closed (${code} ${reason || 'refused'})`);
    stopPlaying();
  });
  $('play-start').classList.add('hidden');
  $('play-stop').classList.remove('hidden');
  void video.play().catch(() => undefined);
  if (!(await open(conn))) return false;
  wasOpen = true;
  player = conn;
  return true;
}

function stopPlaying(): void {
  playWanted = false;
  playAway.cancel();
  const conn = player;
  player = undefined;
  conn?.close();
  $('play-start').classList.remove('hidden');
  $('play-stop').classList.add('hidden');
}

// ---- figures ----
let last = { pub: 0, play: 0, t: performance.now() };
setInterval(() => {
  const now = performance.now();
  const dt = (now - last.t) / 1000;
  const pubBytes = publisher?.bytes ?? 0;
  const playBytes = player?.bytes ?? 0;
  if (publisher)
    $('pub-state').textContent = `sent ${publisher.messages} messages, ${kbps(pubBytes - last.pub, dt)}`;
  if (player) {
    const v = $<HTMLVideoElement>('player');
    $('play-state').textContent =
      `received ${player.messages} messages, ${kbps(playBytes - last.play, dt)}, at ${v.currentTime.toFixed(1)} s`;
  }
  last = { pub: pubBytes, play: playBytes, t: now };
  const channel =
    $<HTMLInputElement>('play-channel').value.trim() || $<HTMLInputElement>('pub-channel').value.trim();
  void fetch(`/stream-stats/${encodeURIComponent(channel)}`)
    .then((r) => (r.ok ? (r.json() as Promise<Record<string, number | boolean>>) : undefined))
    .then(
      (s) => {
        if (!s) return;
        $('server-figures').textContent =
          `${channel}: ${s.publishing ? 'live' : 'not live'} · ${String(s.receivers)} receivers · ` +
          `cache ${(Number(s.cacheBytes) / 1024).toFixed(0)} KiB in ${String(s.cacheChunks)} chunks`;
      },
      () => ($('server-figures').textContent = 'server unreachable'),
    );
}, 1000);

$('pub-start').addEventListener('click', () => {
  startPublishing().catch((err: unknown) => log(`could not publish: ${String(err)}`));
});
$('pub-stop').addEventListener('click', stopPublishing);
$('play-start').addEventListener('click', () => void startPlaying());
$('play-stop').addEventListener('click', stopPlaying);
