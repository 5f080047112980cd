import { startMicUpload, startOpusPlayback, VoipClient, type PlaybackStats } from '../sdk/voip-client.js';
import { warnIfInsecure } from '../sdk/secure-context.js';
import { reconnector, ServerAway } from '../sdk/reconnect.js';

// First, before anything reaches for what an insecure context hides.
warnIfInsecure('the microphone and the encryption keys (WebCrypto) this page signs with');

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const show = (id: string, on: boolean) => $(id).classList.toggle('hidden', !on);
const short = (key: string) => `${key.slice(0, 10)}…${key.slice(-6)}`;
const NAME_STORAGE = 'chorus.call.name';

interface Media {
  stop(): void;
  stats: PlaybackStats;
  mic: MediaStream;
}

let client: VoipClient;
let peer = '';
/** The group room I am in (its name), or ''. */
let room = '';
/** The challenge the caller sent me last (c3), which accepting or rejecting signs. */
let lastChallenge = '';
let media: Media | undefined;
let muted = false;
let statsTimer: number | undefined;
/** Display names by key, as the server knows them (a key without one shows shortened). */
const names = new Map<string, string>();
let members: string[] = [];
/** The last call that ended, and when: a server stopping ends its calls just before it goes. */
let lastEnded: { with: string; at: number } | undefined;
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
  get members() {
    return members;
  },
};

function setStatus(text: string): void {
  $('status').textContent = text;
}

const nameOf = (key: string): string => names.get(key) ?? short(key);

/** Learns the display names of `keys` (quietly: a name is a nicety, the key still works). */
async function learnNames(keys: readonly string[]): Promise<void> {
  const unknown = keys.filter((k) => !names.has(k));
  const got = await client.displayNames(unknown).catch(() => ({}));
  for (const [k, v] of Object.entries(got)) names.set(k, v);
}

function opened(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.OPEN) return Promise.resolve();
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('close', () => reject(new Error('refused')), { once: true });
  });
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
  for (const t of mic.getAudioTracks()) t.enabled = !muted;
  const query = await client.mediaQuery(params);
  const up = await startMicUpload(ctx, mic, (rate) => client.wsUrl(upPath, `${query}&rate=${rate}`));
  const down = startOpusPlayback(ctx, client.wsUrl(downPath, query));
  const mine: Media = {
    stats: down.stats,
    mic,
    stop() {
      up.stop();
      down.stop();
      for (const t of mic.getTracks()) t.stop();
      void ctx.close();
    },
  };
  media = mine;
  try {
    await Promise.all([opened(up.ws), opened(down.ws)]);
  } catch (err) {
    if (media === mine) stopMedia();
    throw err;
  }
  // Either socket closing that I did not close: the call ended (its endCall event comes
  // meanwhile), the server is going away (then the event stream fails too, within
  // moments, and the reconnect rejoins), or, in a cluster, the node carrying these
  // sockets (or mixing the room) died while the event stream's node lives on: rejoin
  // through whichever node answers; a call that is really over is then said so.
  const lost = (): void => {
    if (media !== mine) return;
    stopMedia();
    window.setTimeout(() => {
      if (away.active || media) return;
      if (room || peer) away.start();
    }, 2000);
  };
  up.ws.addEventListener('close', lost);
  down.ws.addEventListener('close', lost);
  statsTimer = window.setInterval(() => {
    const s = down.stats;
    $('call-stats').textContent = `${s.packets} packets received · level ${(s.level * 100).toFixed(0)} %`;
  }, 500);
}

function stopMedia(): void {
  const m = media;
  media = undefined;
  m?.stop();
  if (statsTimer) clearInterval(statsTimer);
}

function setMuted(on: boolean): void {
  muted = on;
  for (const t of media?.mic.getAudioTracks() ?? []) t.enabled = !on;
  for (const id of ['mute', 'room-mute']) {
    $(id).textContent = on ? 'Unmute' : 'Mute';
    $(id).setAttribute('aria-pressed', String(on));
  }
}

function endCall(text: string): void {
  stopMedia();
  if (peer) lastEnded = { with: peer, at: Date.now() };
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
  await learnNames([with_]);
  $('peer-label').textContent = nameOf(with_);
  $('peer-label').title = with_;
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

/** Who is in my room, by display name. */
async function refreshMembers(): Promise<void> {
  if (!room) return;
  const keys = (await client.members(room)).map((m) => m.pubkey);
  await learnNames(keys);
  members = keys.map((k) => (k === client.id ? `${nameOf(k)} (you)` : nameOf(k)));
  $('room-members').replaceChildren(
    ...keys.map((k, i) => {
      const li = document.createElement('li');
      li.textContent = members[i]!;
      li.title = k;
      return li;
    }),
  );
}

async function joinRoom(name: string): Promise<void> {
  room = name;
  await startMedia('/upRoom', '/joinRoom', { roomID: name });
  setStatus(`in room ${name}`);
  show('join-room', false);
  show('leave-room', true);
  show('room-in', true);
  $('room-name').setAttribute('readonly', '');
}

function leaveRoom(text: string): void {
  stopMedia();
  room = '';
  members = [];
  $('room-members').replaceChildren();
  show('join-room', true);
  show('leave-room', false);
  show('room-in', false);
  $('room-name').removeAttribute('readonly');
  setStatus(text);
}

/**
 * The server went away: the page says "reconnecting...", waits for it with backoff,
 * then opens the event stream again (signed, so it replays what was missed) and rejoins
 * the room or the call it was in. What the restarted server no longer has is said.
 */
const away = reconnector({
  status: setStatus,
  async rejoin() {
    await client.connect().catch(() => {
      throw new ServerAway('event stream refused');
    });
    void refreshRooms().catch(() => undefined);
    if (room) {
      await joinRoom(room).catch((err: Error) => {
        throw new Error(`could not rejoin room ${room} (${err.message})`);
      });
      void refreshMembers().catch(() => undefined);
      return;
    }
    if (peer) {
      const other = peer;
      await startMedia('/upCall', '/joinCall', { otherID: other }).catch(() => {
        throw new Error(`the call with ${nameOf(other)} ended while the server was away: call again`);
      });
      setStatus('connected');
      return;
    }
    // A call the stopping server ended just before it went is lost: say so.
    const ended = lastEnded && Date.now() - lastEnded.at < 60_000 ? lastEnded : undefined;
    setStatus(
      ended ? `reconnected: the call with ${nameOf(ended.with)} ended when the server stopped` : 'ready',
    );
  },
  lost(why) {
    if (room) leaveRoom(`reconnected, but ${why}`);
    else endCall(`reconnected, but ${why}`);
  },
});

async function saveName(name: string): Promise<void> {
  await client.setDisplayName(name);
  localStorage.setItem(NAME_STORAGE, name);
  names.set(client.id, name);
  $('me-label').textContent = name;
  show('name-form', false);
  show('me-named', true);
}

async function main(): Promise<void> {
  client = await VoipClient.create();
  client.onLost = () => {
    // Only a call that ended just now went with the server; an older one is history.
    if (lastEnded && Date.now() - lastEnded.at > 5000) lastEnded = undefined;
    stopMedia();
    away.start();
  };
  $<HTMLInputElement>('my-id').value = client.id;
  $('copy-id').onclick = () => void navigator.clipboard.writeText(client.id);

  client.on('newCall', (d) => {
    if (!d.from || !d.challenge || peer) return;
    peer = d.from;
    const from = d.from;
    void learnNames([from]).then(() => setStatus(`${nameOf(from)} is calling: checking keys…`));
    void client.answer(d.from, d.challenge).catch((err: Error) => endCall(err.message));
  });
  client.on('answer', (d) => {
    if (!d.from || d.from !== peer || !d.challenge) return;
    void (async () => {
      const ok = await client.verifyPeer(d.from!, client.sent.get(d.from!) ?? '', d.answer ?? '');
      setStatus(`ringing ${nameOf(d.from!)}${ok ? ' (key verified)' : ''}`);
      await client.answer2(d.from!, d.challenge!);
    })().catch((err: Error) => endCall(err.message));
  });
  client.on('answer2', (d) => {
    if (!d.from || d.from !== peer || !d.challenge) return;
    lastChallenge = d.challenge;
    void client.verifyPeer(d.from, client.sent.get(d.from) ?? '', d.answer ?? '').then(async (ok) => {
      await learnNames([d.from!]);
      $('incoming-from').textContent = nameOf(d.from!);
      $('incoming-from').title = d.from!;
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
  client.on('newRoom', () => void refreshRooms().catch(() => undefined));
  client.on('setAudioConf', () => void refreshMembers().catch(() => undefined));

  $('name-form').onsubmit = (e) => {
    e.preventDefault();
    const name = $<HTMLInputElement>('display-name').value.trim();
    void saveName(name).catch((err: Error) => setStatus(`could not set the name: ${err.message}`));
  };
  $('rename').onclick = () => {
    show('name-form', true);
    show('me-named', false);
  };
  $('call-form').onsubmit = (e) => {
    e.preventDefault();
    peer = $<HTMLInputElement>('peer-id').value.trim().toLowerCase();
    setStatus(`calling ${nameOf(peer)}…`);
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
    away.cancel();
    void client.hangUp(peer).finally(() => endCall('call ended'));
  };
  $('mute').onclick = () => setMuted(!muted);
  $('room-mute').onclick = () => setMuted(!muted);
  $('room-form').onsubmit = (e) => {
    e.preventDefault();
    const name = $<HTMLInputElement>('room-name').value.trim();
    void joinRoom(name)
      .then(() => Promise.all([refreshRooms(), refreshMembers()]))
      .catch((err: Error) => leaveRoom(err.message));
  };
  $('leave-room').onclick = () => {
    away.cancel();
    leaveRoom('ready');
    void refreshRooms();
  };
  // Counts and members change as people come and go; events say only when rooms open.
  window.setInterval(() => {
    if (!room || away.active) return;
    void Promise.all([refreshRooms(), refreshMembers()]).catch(() => undefined);
  }, 2000);

  const saved = localStorage.getItem(NAME_STORAGE);
  await client.connect();
  if (saved) {
    $<HTMLInputElement>('display-name').value = saved;
    await saveName(saved).catch(() => undefined);
  }
  await refreshRooms();
  setStatus('ready');
}

void main().catch((err: Error) =>
  setStatus(
    err instanceof TypeError ? 'the server cannot be reached: reload to try again' : `error: ${err.message}`,
  ),
);
