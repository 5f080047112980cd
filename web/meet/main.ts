import { BlueSkyClient, BlueSkyError } from '../sdk/bluesky-client.js';
import { warnIfInsecure } from '../sdk/secure-context.js';

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
// For tests and the curious: the live peer connections.
(window as unknown as { chorusMeet: unknown }).chorusMeet = { receivers, publisher: () => publisher };

function setStatus(text: string): void {
  $('status').textContent = text;
}

/** A tile: video, name, a state overlay while connecting, badges for muted media. */
function tile(id: string, name: string, mine = false): HTMLElement {
  let el = document.getElementById(`tile-${id}`);
  if (el) return el;
  el = document.createElement('div');
  el.id = `tile-${id}`;
  el.className = `tile${mine ? ' me' : ''}`;
  el.innerHTML =
    '<video autoplay playsinline></video><span class="name"></span><div class="state">connecting…</div><div class="badges"></div>';
  el.querySelector('.name')!.textContent = mine ? `${name} (you)` : name;
  if (mine) (el.querySelector('video') as HTMLVideoElement).muted = true;
  $('grid').append(el);
  return el;
}

function setTileState(id: string, text: string | undefined): void {
  const state = document.querySelector<HTMLElement>(`#tile-${CSS.escape(id)} .state`);
  if (!state) return;
  state.textContent = text ?? '';
  state.classList.toggle('hidden', text === undefined);
}

function removeTile(id: string): void {
  document.getElementById(`tile-${id}`)?.remove();
}

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
  for (const track of local.getTracks())
    pc.addTransceiver(track, { direction: 'sendonly', streams: [local] });
  pc.addEventListener('connectionstatechange', () => {
    setTileState('me', pc.connectionState === 'connected' ? undefined : `${pc.connectionState}…`);
    if (pc.connectionState === 'failed') void republish();
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
    retryTimer = window.setTimeout(
      () => void republish().catch((e: unknown) => setStatus(`error: ${String(e)}`)),
      wait * 1000,
    );
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

async function refresh(): Promise<void> {
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
      removeTile(peer);
    }
  }
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
    refresh().catch((err: unknown) => setStatus(`error: ${String(err)}`));
  }, 2000);
}

function leave(message = ''): void {
  clearInterval(poll);
  clearTimeout(retryTimer);
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
  const track = local?.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  $('toggle-mic').textContent = track.enabled ? 'Mute microphone' : 'Unmute microphone';
  renderBadges();
});
$('toggle-cam').addEventListener('click', () => {
  const track = local?.getVideoTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
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
