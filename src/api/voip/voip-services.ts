import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import type { SocketTracker } from '../surface-context.js';
import { ChallengeBook } from './challenge-book.js';
import { EventHub } from './event-hub.js';
import { KeyAuth } from './key-auth.js';
import { MediaSessions } from './media-sessions.js';
import { serverPublicKeyHex } from './pkey.js';
import { SideSite } from './side-site.js';
import { SiteAuth } from './site-auth.js';
import type { VoipAuth } from './voip-auth.js';
import { VoipCalls, type Notify } from './voip-calls.js';
import { VoipRooms } from './voip-rooms.js';
import { newRoomData } from './voip-wire.js';

export interface VoipSurfaceOptions {
  config: Config['voip'];
  /** Calls and group rooms are rooms of the engine's model. */
  rooms: RoomRegistry;
  audio: AudioHub;
  tracker: SocketTracker;
  /** The server's heartbeat wheel: the event streams' keep-alive comments. */
  heartbeats: HeartbeatScheduler;
  registry: Registry;
  log: Logger;
}

/** What the VOIP surface's route groups share: built once per mount, owned by it. */
export interface VoipServices {
  config: Config['voip'];
  /** The identity mode (side site or keys), chosen once here. */
  auth: VoipAuth;
  events: EventHub;
  /** Sends `name` to every event stream of `to`, in the mode's encoding. */
  notify: Notify;
  calls: VoipCalls;
  rooms: VoipRooms;
  media: MediaSessions;
  tracker: SocketTracker;
  /** The server's public key, the first event of every stream (new at every start). */
  serverKey: string;
  log: Logger;
}

export function createVoipServices(opts: VoipSurfaceOptions): VoipServices {
  const { config, audio, log } = opts;
  const auth = createAuth(config, log);
  const events = new EventHub({
    keepAliveMs: config.keepAliveSeconds * 1000,
    heartbeats: opts.heartbeats,
    replayEvents: config.replayEvents,
    replayMs: 5 * 60_000,
    maxQueuedBytes: 256 * 1024,
    log,
  });
  const notify: Notify = (to, name, fields) => events.send(to, name, auth.eventData(name, fields));
  const calls = new VoipCalls(
    opts.rooms,
    audio,
    { ringTimeoutMs: config.ringTimeoutSeconds * 1000, idleTimeoutMs: config.callIdleSeconds * 1000 },
    notify,
    log,
  );
  const rooms: VoipRooms = new VoipRooms(
    opts.rooms,
    audio,
    config.maxRooms,
    config.maxRoomMembers,
    (room, id, mic, hds) => {
      for (const other of room.group.ids()) {
        if (other !== id) notify(other, 'setAudioConf', { from: id, roomid: room.id, in: mic, out: hds });
      }
    },
    (room) => events.broadcast('newRoom', newRoomData(rooms.summary(room))),
  );
  const media = new MediaSessions({
    auth,
    calls,
    rooms,
    maxRoomMembers: config.maxRoomMembers,
    inputBufferMs: config.inputBufferMs,
  });
  const serverKey = serverPublicKeyHex();
  return { config, auth, events, notify, calls, rooms, media, tracker: opts.tracker, serverKey, log };
}

function createAuth(config: Config['voip'], log: Logger): VoipAuth {
  if (!config.siteEnabled)
    return new KeyAuth(new ChallengeBook(config.ticketTtlSeconds * 1000, config.challengeTtlSeconds * 1000));
  const site = new SideSite({
    baseUrl: config.siteUrl,
    timeoutMs: config.siteTimeoutMs,
    cacheSeconds: config.siteCacheSeconds,
    log,
  });
  return new SiteAuth(site, config.siteOrigin);
}
