import { startMicUpload, startOpusPlayback, VoipClient, type PlaybackStats } from '../sdk/voip-client.js';
import { warnIfInsecure } from '../sdk/secure-context.js';

// First, before anything reaches for what an insecure context hides.
warnIfInsecure('the microphone and the encryption keys (WebCrypto) this page signs with');

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const show = (id: string, on: boolean) => $(id).classList.toggle('hidden', !on);
const short = (key: string) => `${key.slice(0, 10)}…${key.slice(-6)}`;

interface Media {
  stop(): void;
  stats: PlaybackStats;
}

let client: VoipClient;
let peer = '';
/** The challenge the caller sent me last (c3), which accepting or rejecting signs. */
let lastChallenge = '';
let media: Media | undefined;
let statsTimer: number | undefined;
// For tests and the curious.
(window as unknown as { chorusCall: unknown }).chorusCall = {
  get id() {
    return client?.id;
  },
  get stats() {
    return media?.stats;
  },
  get peer() {
    return peer;
  },
};

function setStatus(text: string): void {
  $('status').textContent = text;
}

/** Microphone up and the other side's (or the room's) audio down, over WebSockets. */
async function startMedia(upPath: string, downPath: string, params: Record<string, string>): Promise<void> {
  stopMedia();
  // 48 kHz: the browser resamples the microphone, and the worklet produces what the
  // server mixes (the rate is still declared, for browsers that ignore the option).
  const ctx = new AudioContext({ sampleRate: 48_000 });
  await ctx.resume();
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true },
  });
  const query = await client.mediaQuery(params);
  const up = await startMicUpload(ctx, mic, (rate) => client.wsUrl(upPath, `${query}&rate=${rate}`));
  const down = startOpusPlayback(ctx, client.wsUrl(downPath, query));
  media = {
    stats: down.stats,
    stop() {
      up.stop();
      down.stop();
      for (const t of mic.getTracks()) t.stop();
      void ctx.close();
    },
  };
  statsTimer = window.setInterval(() => {
    const s = down.stats;
    $('call-stats').textContent = `${s.packets} packets received · level ${(s.level * 100).toFixed(0)} %`;
  }, 500);
}

function stopMedia(): void {
  media?.stop();
  media = undefined;
  if (statsTimer) clearInterval(statsTimer);
}

function endCall(text: string): void {
  stopMedia();
  peer = '';
  show('in-call', false);
  show('incoming', false);
  show('dial', true);
  setStatus(text);
}

async function inCall(with_: string): Promise<void> {
  peer = with_;
  show('dial', false);
  show('incoming', false);
  show('in-call', true);
  $('peer-label').textContent = short(with_);
  setStatus('connected');
  await startMedia('/upCall', '/joinCall', { otherID: with_ });
}

async function refreshRooms(): Promise<void> {
  const rooms = (await (await fetch('/listRoom')).json()) as { id: number; name: string; count: number }[];
  $('room-list').replaceChildren(
    ...rooms.map((r) => {
      const li = document.createElement('li');
      li.textContent = `${r.name} · ${r.count} in the room`;
      return li;
    }),
  );
}

async function main(): Promise<void> {
  client = await VoipClient.create();
  $<HTMLInputElement>('my-id').value = client.id;
  $('copy-id').onclick = () => void navigator.clipboard.writeText(client.id);

  client.on('newCall', (d) => {
    if (!d.from || !d.challenge || peer) return;
    peer = d.from;
    setStatus(`${short(d.from)} is calling: checking keys…`);
    void client.answer(d.from, d.challenge).catch((err: Error) => endCall(err.message));
  });
  client.on('answer', (d) => {
    if (!d.from || d.from !== peer || !d.challenge) return;
    void (async () => {
      const ok = await client.verifyPeer(d.from!, client.sent.get(d.from!) ?? '', d.answer ?? '');
      setStatus(`ringing ${short(d.from!)}${ok ? ' (key verified)' : ''}`);
      await client.answer2(d.from!, d.challenge!);
    })().catch((err: Error) => endCall(err.message));
  });
  client.on('answer2', (d) => {
    if (!d.from || d.from !== peer || !d.challenge) return;
    lastChallenge = d.challenge;
    void client.verifyPeer(d.from, client.sent.get(d.from) ?? '', d.answer ?? '').then((ok) => {
      $('incoming-from').textContent = short(d.from!);
      $('incoming-verified').textContent = ok ? '(key verified)' : '(key checked by the server)';
      show('incoming', true);
      setStatus('incoming call');
    });
  });
  client.on('acceptedCall', (d) => {
    if (d.from && d.from === peer) void inCall(d.from).catch((err: Error) => endCall(err.message));
  });
  client.on('declineCall', (d) => {
    if (d.from === peer) endCall('call declined');
  });
  client.on('endCall', (d) => {
    if (d.from === peer) endCall('call ended');
  });
  client.on('newRoom', () => void refreshRooms());

  $('call-form').onsubmit = (e) => {
    e.preventDefault();
    peer = $<HTMLInputElement>('peer-id').value.trim().toLowerCase();
    setStatus(`calling ${short(peer)}…`);
    void client.call(peer).catch((err: Error) => endCall(err.message));
  };
  $('accept').onclick = () => {
    void client
      .decide(peer, lastChallenge, true)
      .then(() => inCall(peer))
      .catch((err: Error) => endCall(err.message));
  };
  $('reject').onclick = () => {
    void client.decide(peer, lastChallenge, false).finally(() => endCall('call rejected'));
  };
  $('hang-up').onclick = () => {
    void client.hangUp(peer).finally(() => endCall('call ended'));
  };
  $('room-form').onsubmit = (e) => {
    e.preventDefault();
    const name = $<HTMLInputElement>('room-name').value.trim();
    void startMedia('/upRoom', '/joinRoom', { roomID: name })
      .then(() => {
        setStatus(`in room ${name}`);
        show('join-room', false);
        show('leave-room', true);
        void refreshRooms();
      })
      .catch((err: Error) => setStatus(err.message));
  };
  $('leave-room').onclick = () => {
    stopMedia();
    show('join-room', true);
    show('leave-room', false);
    setStatus('ready');
    void refreshRooms();
  };

  await client.connect();
  await refreshRooms();
  setStatus('ready');
}

void main().catch((err: Error) => setStatus(`error: ${err.message}`));
