import { SignalClient, type SignalMessage } from '../sdk/signal-client.js';
import { warnIfInsecure } from '../sdk/secure-context.js';
import { reconnector, ServerAway } from '../sdk/reconnect.js';

// First, before anything reaches for what an insecure context hides.
warnIfInsecure('the camera and microphone');

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const ui = {
  status: $('status'),
  registerCard: $('register-card'),
  registerForm: $<HTMLFormElement>('register-form'),
  username: $<HTMLInputElement>('username'),
  registerError: $('register-error'),
  callCard: $('call-card'),
  callForm: $<HTMLFormElement>('call-form'),
  peer: $<HTMLInputElement>('peer'),
  call: $<HTMLButtonElement>('call'),
  hangup: $<HTMLButtonElement>('hangup'),
  mute: $<HTMLButtonElement>('mute'),
  peerState: $('peer-state'),
  incoming: $('incoming'),
  incomingText: $('incoming-text'),
  accept: $<HTMLButtonElement>('accept'),
  decline: $<HTMLButtonElement>('decline'),
  local: $<HTMLVideoElement>('local'),
  remote: $<HTMLVideoElement>('remote'),
  remoteName: $('remote-name'),
  log: $('log'),
};

const client = new SignalClient();
let me = '';
let peerName = '';
let pc: RTCPeerConnection | undefined;
let pendingOffer: { from: string; sdp: RTCSessionDescriptionInit } | undefined;
const pendingCandidates: RTCIceCandidateInit[] = [];
let lastSentType = '';
/** My camera and microphone while in a call (muting disables its audio track). */
let localStream: MediaStream | undefined;
/** STUN/TURN from the server (ICE_SERVERS, TURN_SECRET); none until it answers, or when it has none. */
let iceServers: RTCIceServer[] = [];
void fetch('/ice-servers')
  .then((r) => (r.ok ? (r.json() as Promise<{ iceServers?: RTCIceServer[] }>) : undefined))
  .then((body) => {
    if (Array.isArray(body?.iceServers)) iceServers = body.iceServers;
  })
  .catch(() => undefined); // no TURN: direct and STUN-less candidates still work on a LAN

function log(text: string): void {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  ui.log.prepend(li);
}

function setStatus(text: string): void {
  ui.status.textContent = text;
}

function send(target: string, type: string, payload: unknown = null): void {
  lastSentType = type;
  try {
    client.send(target, type, payload);
  } catch {
    // Away from the server (reconnecting): the peer-to-peer call goes on without it.
    log(`not sent while reconnecting: ${type}`);
  }
}

async function localMedia(): Promise<MediaStream> {
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  ui.local.srcObject = stream;
  localStream = stream;
  setMuted(false);
  return stream;
}

function setMuted(muted: boolean): void {
  for (const t of localStream?.getAudioTracks() ?? []) t.enabled = !muted;
  ui.mute.textContent = muted ? 'Unmute' : 'Mute';
  ui.mute.setAttribute('aria-pressed', String(muted));
}

function newPeerConnection(remote: string): RTCPeerConnection {
  const conn = new RTCPeerConnection({ iceServers });
  conn.addEventListener('icecandidate', (ev) =>
    send(remote, 'ice-candidate', ev.candidate ? ev.candidate.toJSON() : null),
  );
  conn.addEventListener('track', (ev) => {
    ui.remote.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
    ui.remoteName.textContent = remote;
  });
  conn.addEventListener('connectionstatechange', () => {
    if (!away.active) setStatus(`${me} · call with ${remote}: ${conn.connectionState}`);
    if (conn.connectionState === 'failed') endCall('connection failed');
  });
  pc = conn;
  (window as unknown as { chorusSignalDemo: unknown }).chorusSignalDemo = {
    pc: conn,
    get local() {
      return localStream;
    },
  };
  return conn;
}

async function flushCandidates(): Promise<void> {
  while (pc && pc.remoteDescription && pendingCandidates.length > 0) {
    await pc.addIceCandidate(pendingCandidates.shift());
  }
}

function endCall(why: string): void {
  pc?.close();
  pc = undefined;
  ui.remote.srcObject = null;
  ui.remoteName.textContent = '—';
  ui.hangup.classList.add('hidden');
  ui.mute.classList.add('hidden');
  localStream?.getTracks().forEach((t) => t.stop());
  localStream = undefined;
  ui.local.srcObject = null;
  ui.call.disabled = false;
  if (!away.active) setStatus(`connected as ${me}`);
  log(`call ended: ${why}`);
}

async function startCall(remote: string): Promise<void> {
  peerName = remote;
  const stream = await localMedia();
  const conn = newPeerConnection(remote);
  for (const track of stream.getTracks()) conn.addTrack(track, stream);
  const offer = await conn.createOffer();
  await conn.setLocalDescription(offer);
  send(remote, 'video-offer', { type: offer.type, sdp: offer.sdp });
  ui.call.disabled = true;
  ui.hangup.classList.remove('hidden');
  ui.mute.classList.remove('hidden');
  log(`calling ${remote}…`);
}

async function acceptCall(): Promise<void> {
  if (!pendingOffer) return;
  const { from, sdp } = pendingOffer;
  pendingOffer = undefined;
  ui.incoming.classList.add('hidden');
  peerName = from;
  const stream = await localMedia();
  const conn = newPeerConnection(from);
  await conn.setRemoteDescription(sdp);
  for (const track of stream.getTracks()) conn.addTrack(track, stream);
  const answer = await conn.createAnswer();
  await conn.setLocalDescription(answer);
  send(from, 'video-answer', { type: answer.type, sdp: answer.sdp });
  await flushCandidates();
  ui.call.disabled = true;
  ui.hangup.classList.remove('hidden');
  ui.mute.classList.remove('hidden');
  log(`accepted call from ${from}`);
}

async function onMessage(msg: SignalMessage): Promise<void> {
  switch (msg.type) {
    case 'TARGET_NOT_FOUND':
      ui.peerState.textContent = `${peerName || 'that user'} is not online.`;
      if (lastSentType === 'video-offer') endCall(`${peerName} is not online`);
      return;
    case 'RATE_LIMITED':
    case 'INVALID_MESSAGE':
      log(`server: ${msg.type} ${JSON.stringify(msg.payload)}`);
      return;
    case 'hello':
      ui.peerState.textContent = `${msg.originator} is online.`;
      send(msg.originator, 'hello-ack');
      return;
    case 'hello-ack':
      ui.peerState.textContent = `${msg.originator} is online.`;
      return;
    case 'video-offer':
      pendingOffer = { from: msg.originator, sdp: msg.payload as RTCSessionDescriptionInit };
      ui.incomingText.textContent = `${msg.originator} is calling you`;
      ui.incoming.classList.remove('hidden');
      log(`incoming call from ${msg.originator}`);
      return;
    case 'video-answer':
      await pc?.setRemoteDescription(msg.payload as RTCSessionDescriptionInit);
      await flushCandidates();
      log(`${msg.originator} answered`);
      return;
    case 'ice-candidate':
      if (msg.payload) pendingCandidates.push(msg.payload);
      await flushCandidates();
      return;
    case 'call-declined':
      endCall(`${msg.originator} declined`);
      return;
    case 'hang-up':
      endCall(`${msg.originator} hung up`);
      return;
    default:
      log(`message ${msg.type} from ${msg.originator}`);
  }
}

async function connect(): Promise<void> {
  await client.connect();
  setStatus(pc ? `${me} · call with ${peerName}: ${pc.connectionState}` : `connected as ${me}`);
  ui.registerCard.classList.add('hidden');
  ui.callCard.classList.remove('hidden');
  log(`connected as ${me}`);
}

client.addEventListener('message', (ev) => {
  onMessage((ev as CustomEvent<SignalMessage>).detail).catch((err: unknown) => log(`error: ${String(err)}`));
});
/**
 * The server went away (restart, network): the call, peer to peer, goes on; the page
 * keeps its call controls, says "reconnecting...", and reconnects with the session
 * cookie, which the server keeps across restarts. If the server no longer knows the
 * name, it says so and asks for one again.
 */
const away = reconnector({
  status: setStatus,
  async rejoin() {
    const session = await client.session();
    if (session === 'unavailable') throw new ServerAway('not ready');
    if (session === 'unknown') throw new Error(`the server no longer knows the name "${me}"`);
    await client.connect().catch(() => {
      throw new ServerAway('socket refused');
    });
    setStatus(pc ? `${me} · call with ${peerName}: ${pc.connectionState}` : `connected as ${me}`);
    log(`reconnected as ${me}`);
  },
  lost(why) {
    setStatus('not connected');
    ui.callCard.classList.add('hidden');
    ui.registerCard.classList.remove('hidden');
    ui.registerError.textContent = `Reconnected, but ${why}: pick a name again${pc ? ' (your call goes on)' : ''}.`;
  },
});

client.addEventListener('close', (ev) => {
  const { code, reason } = (ev as CustomEvent<{ code: number; reason: string }>).detail;
  if (away.active || !me) return; // a reconnect attempt that failed: the loop goes on
  if (code === 4001) {
    setStatus(`disconnected (${code} ${reason})`);
    log('this name connected from another tab or device');
    ui.callCard.classList.add('hidden');
    ui.registerCard.classList.remove('hidden');
    return;
  }
  log(`lost the server (${code}${reason ? ` ${reason}` : ''})`);
  away.start();
});

ui.registerForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = ui.username.value.trim();
  ui.registerError.textContent = '';
  void (async () => {
    const res = await client.register(name);
    if (res.status === 'TAKEN') {
      ui.registerError.textContent = `"${name}" is taken: pick another name.`;
      return;
    }
    if (res.status !== 'SUCCESS') {
      ui.registerError.textContent = res.message || 'could not register';
      return;
    }
    away.cancel();
    me = name;
    localStorage.setItem('chorus.signal.username', name);
    await connect();
  })().catch((err: unknown) => (ui.registerError.textContent = String(err)));
});

ui.peer.addEventListener('change', () => {
  const name = ui.peer.value.trim();
  if (name) {
    peerName = name;
    send(name, 'hello');
  }
});

ui.callForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  startCall(ui.peer.value.trim()).catch((err: unknown) => {
    const denied = err instanceof DOMException && err.name === 'NotAllowedError';
    log(denied ? 'camera or microphone access was denied' : `call failed: ${String(err)}`);
    endCall('could not start');
  });
});

ui.accept.addEventListener('click', () => {
  acceptCall().catch((err: unknown) => log(`accept failed: ${String(err)}`));
});
ui.decline.addEventListener('click', () => {
  if (pendingOffer) send(pendingOffer.from, 'call-declined');
  pendingOffer = undefined;
  ui.incoming.classList.add('hidden');
});
ui.mute.addEventListener('click', () => setMuted(ui.mute.getAttribute('aria-pressed') !== 'true'));
ui.hangup.addEventListener('click', () => {
  if (peerName) send(peerName, 'hang-up');
  endCall('you hung up');
});

// Returning visitor: reuse the stored name when the session cookie is still valid.
const saved = localStorage.getItem('chorus.signal.username');
if (saved) {
  ui.username.value = saved;
  void client.hasSession().then(async (ok) => {
    if (ok) {
      me = saved;
      await connect();
    }
  });
}
