import { Room, type ActiveSpeaker, type RemoteParticipant } from '../../sdk/src/index.js';
import { removeTile, setBadges, setStatus, setTileState, tile } from './tiles.js';

/** A meeting joined with an access token over the native signalling, through the SDK. */
export interface NativeMeeting {
  readonly room: Room;
  /** Flips the microphone (or camera); returns whether it is now on. */
  toggle(kind: 'audio' | 'video'): Promise<boolean>;
  leave(): void;
}

const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

/** The room and identity a token names, read (not verified) for the page's labels before joining. */
export function tokenClaims(token: string): { room?: string; sub?: string } {
  try {
    const part = token.split('.')[1] ?? '';
    return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { room?: string; sub?: string };
  } catch {
    return {};
  }
}

/**
 * Joins the room the token names on this server: the camera and microphone published,
 * everyone else's tracks on their tiles, mute badges from the room's events, the active
 * speaker outlined. `ended` is called once when the room is over for this page.
 */
export async function joinNative(token: string, ended: (message: string) => void): Promise<NativeMeeting> {
  let local: MediaStream | undefined;
  try {
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  } catch (err) {
    byId('media-error').textContent =
      `No camera or microphone (${String(err)}): you can still see and hear the others.`;
  }
  const room = await Room.connect(location.origin, token);
  const me = room.localParticipant.identity;
  const muted = new Map<string, Set<string>>();
  const others = (): string => {
    const n = room.participants.size;
    return `${me} · ${n} other${n === 1 ? '' : 's'} here`;
  };

  const showMuted = (identity: string, kind: string, on: boolean): void => {
    const set = muted.get(identity) ?? new Set<string>();
    muted.set(identity, set);
    if (on) set.add(kind);
    else set.delete(kind);
    setBadges(
      identity === me ? 'me' : identity,
      [set.has('audio') ? 'mic off' : '', set.has('video') ? 'camera off' : ''].filter(Boolean),
    );
  };
  const addTile = (p: RemoteParticipant): void => {
    tile(p.identity, p.name || p.identity);
    for (const pub of p.tracks.values()) if (pub.muted) showMuted(p.identity, pub.kind, true);
  };

  room.on('participantJoined', (p) => {
    addTile(p);
    setStatus(others());
  });
  room.on('participantLeft', (p) => {
    removeTile(p.identity);
    muted.delete(p.identity);
    setStatus(others());
  });
  // Attached through the SDK: each tile's size and visibility pick the simulcast layer it
  // gets (a small tile a small layer, a tile scrolled away or a hidden page nothing).
  room.on('trackSubscribed', (track, pub, p) => {
    const t = tile(p.identity, p.name || p.identity);
    if (track.kind === 'video') pub.attach(t.querySelector('video')!);
    else {
      let audio = t.querySelector('audio');
      if (!audio) t.append((audio = document.createElement('audio')));
      pub.attach(audio);
    }
    setTileState(p.identity, undefined);
  });
  room.on('trackMuted', (pub, p) => showMuted(p.identity, pub.kind, true));
  room.on('trackUnmuted', (pub, p) => showMuted(p.identity, pub.kind, false));
  room.on('activeSpeakers', (speakers: ActiveSpeaker[]) => {
    const speaking = new Set(speakers.map((s) => (s.identity === me ? 'me' : s.identity)));
    for (const el of document.querySelectorAll<HTMLElement>('#grid .tile'))
      el.classList.toggle('speaking', speaking.has(el.id.slice('tile-'.length)));
    byId('speaker-note').textContent =
      room.speakerSource === 'server'
        ? ''
        : 'Who speaks is measured in this browser from audio levels (this server does not send active speakers yet).';
  });
  room.on('reconnecting', () => setStatus('reconnecting…'));
  room.on('reconnected', () => setStatus(others()));
  room.on('error', (err) => console.warn('chorus room:', err));
  room.on('disconnected', (reason) => {
    local?.getTracks().forEach((t) => t.stop());
    ended(reason.code === 'left' ? '' : `The meeting ended for you: ${reason.message}.`);
  });

  byId('room-label').textContent = `room ${room.name} (native API)`;
  const mine = tile('me', me, true);
  if (local) (mine.querySelector('video') as HTMLVideoElement).srcObject = local;
  for (const p of room.participants.values()) addTile(p);
  setStatus(others());
  if (local && room.permissions.canPublish) {
    for (const track of local.getTracks()) await room.localParticipant.publishTrack(track);
  }
  setTileState('me', undefined);

  return {
    room,
    async toggle(kind) {
      const pub = room.localParticipant.tracks.get(kind);
      if (!pub) return false;
      await room.localParticipant.setMuted(kind, !pub.muted);
      showMuted(me, kind, pub.muted);
      return !pub.muted;
    },
    leave() {
      room.disconnect();
    },
  };
}
