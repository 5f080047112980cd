import { BlueSkyClient, BlueSkyError } from '../sdk/bluesky-client.js';
import { warnIfInsecure } from '../sdk/secure-context.js';
import { reconnector, ServerAway } from '../sdk/reconnect.js';
import { removeTile, setBadges, setStatus, setTileState, tile } from './tiles.js';
import { joinNative, tokenClaims, type NativeMeeting } from './native-meet.js';

// First, before anything reaches for what an insecure context hides.
warnIfInsecure('the camera and microphone');

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const api = new BlueSkyClient();

let me = '';
let roomId = '';
let admin = '';
let local: MediaStream | undefined;
let publisher: RTCPeerConnection | undefined;
const receivers = new Map<string, RTCPeerConnection>();
let poll: number | undefined;
/** A publish refused as busy, to be tried again. */
let retryTimer: number | undefined;
/** My publisher's senders by kind: muting takes the track off its sender, so no media flows. */
const senders = new Map<string, RTCRtpSender>();
/** Per remote peer and kind: packets received at the last look, and whether they still come. */
const flow = new Map<string, { audio: number; video: number; audioOff: boolean; videoOff: boolean }>();
let flowTimer: number | undefined;
/**
 * A leg that is not connected for this long is made again. In a cluster each leg may run
 * through another node: when one node dies (or ends a leg because the publisher's node
 * died), only the legs through it go, and the page remakes those without a reload.
 */
const LEG_GRACE_MS = 2000;
/** Since when each leg (by peer connection) has not been connected. */
const downSince = new WeakMap<RTCPeerConnection, number>();
/** Set while in a room joined with an access token (native signalling through the SDK). */
let native: NativeMeeting | undefined;
// For tests and the curious: the live peer connections (Blue Sky mode), the SDK's room (native mode).
(window as unknown as { chorusMeet: unknown }).chorusMeet = {
  receivers,
  publisher: () => publisher,
  room: () => native?.room,
};

async function publish(): Promise<void> {
  try {
    // Kept across republishing (a failed connection, a busy server): no second prompt.
    local ??= await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  } catch (err) {
    const denied =
      err instanceof DOMException && (err.name === 'NotAllowedError' || err.name === 'SecurityError');
    $('media-error').textContent = denied
      ? 'Camera and microphone access was denied: you can still see and hear the others. Allow access in the browser and rejoin to be seen.'
      : `No camera or microphone available (${String(err)}): you can still see and hear the others.`;
    return;
  }
  const t = tile('me', me, true);
  (t.querySelector('video') as HTMLVideoElement).srcObject = local;
  const pc = new RTCPeerConnection();
  publisher = pc;
  senders.clear();
  for (const track of local.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [local] });
    senders.set(track.kind, t.sender);
    // Muted before (re)publishing: nothing flows until unmuted.
    if (!track.enabled) void t.sender.replaceTrack(null);
  }
  pc.addEventListener('connectionstatechange', () => {
    if (publisher !== pc) return;
    setTileState('me', pc.connectionState === 'connected' ? undefined : `${pc.connectionState}…`);
    if (pc.connectionState === 'failed') void republish().catch(lostServer);
  });
  try {
    await api.negotiate(pc, roomId, me, me, true);
    $('media-error').textContent = '';
  } catch (err) {
    if (!(err instanceof BlueSkyError && err.busy)) throw err;
    // The server is full or overloaded: say so, and try again when it says to.
    const wait = err.retryAfterSeconds ?? 5;
    setTileState('me', 'server busy…');
    $('media-error').textContent = `The server is busy (${err.message}): trying again in ${wait} s.`;
    retryTimer = window.setTimeout(() => void republish().catch(lostServer), wait * 1000);
  }
}

async function republish(): Promise<void> {
  publisher?.close();
  publisher = undefined;
  if (roomId) await publish();
}

async function subscribe(peer: string): Promise<void> {
  const pc = new RTCPeerConnection();
  receivers.set(peer, pc);
  const t = tile(peer, peer);
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.addEventListener('track', (ev) => {
    stream.addTrack(ev.track);
    (t.querySelector('video') as HTMLVideoElement).srcObject = stream;
  });
  pc.addEventListener('connectionstatechange', () => {
    if (receivers.get(peer) !== pc) return;
    setTileState(peer, pc.connectionState === 'connected' ? undefined : `${pc.connectionState}…`);
    if (pc.connectionState === 'failed') {
      pc.close();
      receivers.delete(peer); // the next poll subscribes again
    }
  });
  try {
    await api.negotiate(pc, roomId, me, peer, false);
  } catch (err) {
    pc.close();
    receivers.delete(peer);
    // 404: not publishing yet (or any more); 503: the server is busy. The next poll tries again.
    if (!(err instanceof BlueSkyError && (err.status === 404 || err.busy))) throw err;
    if (err.busy) setTileState(peer, 'server busy, retrying…');
  }
}

async function refresh(rejoining = false): Promise<void> {
  let info;
  try {
    info = await api.room(roomId);
  } catch (err) {
    if (err instanceof BlueSkyError && err.status === 404) {
      leave('The meeting has ended.');
      return;
    }
    throw err;
  }
  const others = info.publishers.filter((p) => p !== me);
  for (const peer of others) if (!receivers.has(peer)) await subscribe(peer);
  for (const [peer, pc] of receivers) {
    if (!others.includes(peer)) {
      pc.close();
      receivers.delete(peer);
      flow.delete(peer);
      removeTile(peer);
    }
  }
  if (away.active && !rejoining) return;
  setStatus(`${me} · ${others.length} other${others.length === 1 ? '' : 's'} here`);
}

async function join(name: string, room: string): Promise<void> {
  me = name;
  roomId = room || (await api.createRoom(name));
  // With secured rooms this claims the name in the room (and gets the key to publish).
  if (room) await api.joinRoom(room, name);
  const info = await api.room(roomId);
  admin = info.admin;
  location.hash = `room=${encodeURIComponent(roomId)}`;
  $('lobby').classList.add('hidden');
  $('in-room').classList.remove('hidden');
  $('close-room').classList.toggle('hidden', admin !== me);
  $('room-label').textContent = `room ${roomId}`;
  setStatus(`joining as ${me}…`);
  await publish();
  await refresh();
  poll = window.setInterval(() => {
    if (!away.active) refresh().catch(lostServer);
  }, 2000);
  flowTimer = window.setInterval(() => void watchFlow(), 1000);
}

/**
 * The server did not answer (a restart, the network): "reconnecting..." with backoff,
 * not "TypeError: Failed to fetch". Other errors are said as they are.
 */
function lostServer(err: unknown): void {
  if (err instanceof TypeError || (err instanceof BlueSkyError && err.status >= 502)) away.start();
  else setStatus(`error: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * Once the server answers again: the room is still there (rooms are kept in the store),
 * so publish again and receive everyone afresh (the old peer connections died with the
 * server's process). A room that is gone is said plainly.
 */
const away = reconnector({
  status: setStatus,
  async rejoin() {
    let info;
    try {
      info = await api.room(roomId);
    } catch (err) {
      if (err instanceof BlueSkyError && err.status === 404)
        throw new Error('the meeting ended while the server was away', { cause: err });
      if (err instanceof BlueSkyError && err.busy) throw new ServerAway(err.message, { cause: err });
      throw err;
    }
    if (info.admin !== me) await api.joinRoom(roomId, me).catch(() => undefined);
    for (const [peer, pc] of receivers) {
      pc.close();
      removeTile(peer);
    }
    receivers.clear();
    flow.clear();
    clearTimeout(retryTimer);
    await republish();
    await refresh(true);
  },
  lost(why) {
    leave(`Reconnected, but ${why}.`);
  },
});

/** True when `pc` has been failed, closed or disconnected for LEG_GRACE_MS (connecting is not down). */
function legDown(pc: RTCPeerConnection, now: number): boolean {
  const state = pc.connectionState;
  if (state === 'connected' || state === 'new' || state === 'connecting') {
    downSince.delete(pc);
    return false;
  }
  const since = downSince.get(pc) ?? now;
  downSince.set(pc, since);
  return now - since >= LEG_GRACE_MS;
}

/**
 * Remakes the legs that went down: my publisher through whichever node answers, a dead
 * receiver at the next poll (if its publisher is still listed, which it is again once it
 * has published through another node).
 */
function reviveLegs(): void {
  if (away.active || !roomId) return;
  const now = Date.now();
  if (publisher && legDown(publisher, now)) void republish().catch(lostServer);
  for (const [peer, pc] of receivers) {
    if (!legDown(pc, now)) continue;
    pc.close();
    receivers.delete(peer);
    flow.delete(peer);
    setTileState(peer, 'reconnecting…');
  }
}

/** Badges for the others' muted microphone or camera: their media stops arriving (they took it off). */
async function watchFlow(): Promise<void> {
  reviveLegs();
  for (const [peer, pc] of receivers) {
    if (pc.connectionState !== 'connected') continue;
    const now = { audio: 0, video: 0 };
    (await pc.getStats()).forEach((s: { type: string; kind?: string; packetsReceived?: number }) => {
      if (s.type === 'inbound-rtp' && (s.kind === 'audio' || s.kind === 'video'))
        now[s.kind] += s.packetsReceived ?? 0;
    });
    const before = flow.get(peer);
    const state = {
      ...now,
      audioOff: before ? now.audio === before.audio : false,
      videoOff: before ? now.video === before.video : false,
    };
    flow.set(peer, state);
    setBadges(peer, [state.audioOff ? 'mic off' : '', state.videoOff ? 'camera off' : ''].filter(Boolean));
  }
}

/**
 * With an access token the page joins through the SDK and the native signalling: the
 * room and identity are the token's, so the name and room fields are not used.
 */
async function joinWithToken(token: string): Promise<void> {
  const claims = tokenClaims(token);
  $('lobby').classList.add('hidden');
  $('in-room').classList.remove('hidden');
  $('close-room').classList.add('hidden');
  // The page's address would carry the token: no invite link to copy.
  $('copy-link').classList.add('hidden');
  $('room-label').textContent = claims.room ? `room ${claims.room}` : '';
  setStatus(`joining${claims.sub ? ` as ${claims.sub}` : ''}…`);
  const meeting = await joinNative(token, (message) => {
    if (native === meeting) leave(message);
  });
  native = meeting;
}

function leave(message = ''): void {
  const meeting = native;
  native = undefined;
  meeting?.leave();
  $('copy-link').classList.remove('hidden');
  $('speaker-note').textContent = '';
  away.cancel();
  clearInterval(poll);
  clearInterval(flowTimer);
  clearTimeout(retryTimer);
  flow.clear();
  senders.clear();
  publisher?.close();
  publisher = undefined;
  for (const pc of receivers.values()) pc.close();
  receivers.clear();
  local?.getTracks().forEach((t) => t.stop());
  local = undefined;
  $('grid').replaceChildren();
  $('in-room').classList.add('hidden');
  $('lobby').classList.remove('hidden');
  $('lobby-error').textContent = message;
  roomId = '';
  setStatus('not in a room');
  void listRooms();
}

async function listRooms(): Promise<void> {
  const rooms = await api.listRooms().catch(() => []);
  const box = $('open-rooms');
  box.replaceChildren(
    rooms.length ? 'Open rooms: ' : 'No open rooms yet: leave the room empty to create one.',
  );
  for (const id of rooms) {
    const b = document.createElement('button');
    b.className = 'secondary';
    b.textContent = id;
    b.type = 'button';
    b.addEventListener('click', () => ($<HTMLInputElement>('room-id').value = id));
    box.append(b);
  }
}

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $<HTMLInputElement>('token').value.trim();
  if (token) {
    $('lobby-error').textContent = '';
    joinWithToken(token).catch((err: unknown) => leave(`Could not join with the token: ${String(err)}`));
    return;
  }
  const name = $<HTMLInputElement>('name').value.trim();
  if (!/^[-_.@A-Za-z0-9]{1,64}$/.test(name)) {
    $('lobby-error').textContent = 'Names use letters, digits, - _ . @ (no spaces).';
    return;
  }
  localStorage.setItem('chorus.meet.name', name);
  $('lobby-error').textContent = '';
  join(name, $<HTMLInputElement>('room-id').value.trim()).catch((err: unknown) =>
    leave(`Could not join: ${String(err)}`),
  );
});

$('toggle-mic').addEventListener('click', () => {
  if (native) {
    native.toggle('audio').then(
      (on) => ($('toggle-mic').textContent = on ? 'Mute microphone' : 'Unmute microphone'),
      (err: unknown) => setStatus(`could not mute: ${String(err)}`),
    );
    return;
  }
  const track = local?.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  void senders.get('audio')?.replaceTrack(track.enabled ? track : null);
  $('toggle-mic').textContent = track.enabled ? 'Mute microphone' : 'Unmute microphone';
  renderBadges();
});
$('toggle-cam').addEventListener('click', () => {
  if (native) {
    native.toggle('video').then(
      (on) => ($('toggle-cam').textContent = on ? 'Turn camera off' : 'Turn camera on'),
      (err: unknown) => setStatus(`could not turn the camera off: ${String(err)}`),
    );
    return;
  }
  const track = local?.getVideoTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  void senders.get('video')?.replaceTrack(track.enabled ? track : null);
  $('toggle-cam').textContent = track.enabled ? 'Turn camera off' : 'Turn camera on';
  renderBadges();
});
function renderBadges(): void {
  const badges = document.querySelector('#tile-me .badges');
  if (!badges) return;
  badges.replaceChildren();
  if (local?.getAudioTracks()[0]?.enabled === false)
    badges.insertAdjacentHTML('beforeend', '<span class="badge">mic off</span>');
  if (local?.getVideoTracks()[0]?.enabled === false)
    badges.insertAdjacentHTML('beforeend', '<span class="badge">camera off</span>');
}
$('copy-link').addEventListener('click', () => {
  void navigator.clipboard?.writeText(location.href);
});
$('leave').addEventListener('click', () => leave());
$('close-room').addEventListener('click', () => {
  api.closeRoom(roomId, me).then(
    () => leave('You ended the meeting.'),
    (err: unknown) => setStatus(`could not end the meeting: ${String(err)}`),
  );
});

$<HTMLInputElement>('name').value = localStorage.getItem('chorus.meet.name') ?? '';
const fromHash = /room=([^&]+)/.exec(location.hash)?.[1];
if (fromHash) $<HTMLInputElement>('room-id').value = decodeURIComponent(fromHash);
void listRooms();
// `/meet/?token=<JWT>` joins at once, the way an application links a participant into its room.
const fromQuery = new URLSearchParams(location.search).get('token');
if (fromQuery) {
  $<HTMLInputElement>('token').value = fromQuery;
  joinWithToken(fromQuery).catch((err: unknown) => leave(`Could not join with the token: ${String(err)}`));
}
