import { StreamConnection, webmMimeFromHeader } from '../sdk/stream-client.js';
import { warnIfInsecure } from '../sdk/secure-context.js';

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

const source = $<HTMLSelectElement>('pub-source');
source.addEventListener('change', () => $('pub-file').classList.toggle('hidden', source.value !== 'file'));

function recorderMime(): string {
  for (const m of ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp8', 'video/webm']) {
    if (MediaRecorder.isTypeSupported(m)) return m;
  }
  return '';
}

async function startPublishing(): Promise<void> {
  const channel = $<HTMLInputElement>('pub-channel').value.trim();
  const key = $<HTMLInputElement>('pub-key').value.trim();
  const conn = new StreamConnection(channel, key, 'publish');
  conn.addEventListener('close', (ev) => {
    const { code, reason } = (ev as CustomEvent<{ code: number; reason: string }>).detail;
    log(`publisher closed (${code} ${reason || 'refused: channel busy, bad id or key denied'})`);
    stopPublishing();
  });
  await conn.opened();
  publisher = conn;
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
      conn.close();
      return;
    }
    $<HTMLVideoElement>('pub-preview').srcObject = pubStream;
    recorder = new MediaRecorder(pubStream, { mimeType: recorderMime(), videoBitsPerSecond: 1_500_000 });
    recorder.addEventListener('dataavailable', (ev) => {
      void ev.data.arrayBuffer().then((buf) => conn.send(buf));
    });
    recorder.start(500);
  } else {
    const file = $<HTMLInputElement>('pub-file').files?.[0];
    if (!file) {
      log('choose a file first');
      conn.close();
      return;
    }
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
  }
  $('pub-start').classList.add('hidden');
  $('pub-stop').classList.remove('hidden');
  log(`publishing ${channel}`);
}

function stopPublishing(): void {
  if (recorder?.state === 'recording') recorder.stop();
  recorder = undefined;
  clearInterval(fileTimer);
  pubStream?.getTracks().forEach((t) => t.stop());
  pubStream = undefined;
  publisher?.close();
  publisher = undefined;
  $('pub-start').classList.remove('hidden');
  $('pub-stop').classList.add('hidden');
}

// ---- watching ----
let player: StreamConnection | undefined;

function startPlaying(): void {
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
  const conn = new StreamConnection(channel, key, 'receive');
  player = conn;
  conn.addEventListener('chunk', (ev) => {
    const data = (ev as CustomEvent<ArrayBuffer>).detail;
    if (!buffer && media.readyState === 'open') {
      const mime = webmMimeFromHeader(new Uint8Array(data));
      buffer = media.addSourceBuffer(mime);
      buffer.mode = 'sequence';
      buffer.addEventListener('updateend', () => {
        // Stay near the live edge: a late joiner is replayed the whole cache.
        const end = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0;
        if (end - video.currentTime > 3) video.currentTime = end - 0.5;
        pump();
      });
      log(`playing ${mime}`);
    }
    queue.push(data);
    pump();
  });
  conn.addEventListener('error-text', (ev) => log((ev as CustomEvent<string>).detail));
  conn.addEventListener('close', (ev) => {
    const { code, reason } = (ev as CustomEvent<{ code: number; reason: string }>).detail;
    log(`player closed (${code} ${reason || 'refused'})`);
    $('play-start').classList.remove('hidden');
    $('play-stop').classList.add('hidden');
  });
  $('play-start').classList.add('hidden');
  $('play-stop').classList.remove('hidden');
  void video.play().catch(() => undefined);
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
    .then((s) => {
      if (!s) return;
      $('server-figures').textContent =
        `${channel}: ${s.publishing ? 'live' : 'not live'} · ${String(s.receivers)} receivers · ` +
        `cache ${(Number(s.cacheBytes) / 1024).toFixed(0)} KiB in ${String(s.cacheChunks)} chunks`;
    });
}, 1000);

$('pub-start').addEventListener('click', () => {
  startPublishing().catch((err: unknown) => log(`could not publish: ${String(err)}`));
});
$('pub-stop').addEventListener('click', stopPublishing);
$('play-start').addEventListener('click', startPlaying);
$('play-stop').addEventListener('click', () => player?.close());
