import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../../config/schema.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { FRAME_MS } from '../../media/audio/pcm-frame.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import type { Ports } from '../../ports/ports.js';
import type { SocketTracker } from '../surface-context.js';
import { ChallengeBook } from './challenge-book.js';
import { EventHub } from './event-hub.js';
import { KeyAuth } from './key-auth.js';
import { MediaRelay } from './media-relay.js';
import { MediaSessions } from './media-sessions.js';
import { serverPublicKeyHex } from './pkey.js';
import { SideSite } from './side-site.js';
import { SiteAuth } from './site-auth.js';
import type { VoipAuth } from './voip-auth.js';
import { VoipCalls, type Notify } from './voip-calls.js';
import { voipNode } from './voip-node.js';
import { MemberNotices } from './member-notices.js';
import { VoipRooms, type VoipRoom } from './voip-rooms.js';
import { newRoomData } from './voip-wire.js';

export interface VoipSurfaceOptions {
  config: Config['voip'];
  /** Calls and group rooms are rooms of the engine's model. */
  rooms: RoomRegistry;
  audio: AudioHub;
  /** The bus and the store: calls, rooms, tickets and events are shared by every node. */
  ports: Ports;
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
  /** Rooms' `setAudioConf` notices, gathered per room (stopped at shutdown). */
  notices: MemberNotices<VoipRoom>;
  /** Sends `name` to every event stream of `to`, in the mode's encoding. */
  notify: Notify;
  calls: VoipCalls;
  rooms: VoipRooms;
  media: MediaSessions;
  /** Calls' and rooms' media across nodes. */
  relay: MediaRelay;
  tracker: SocketTracker;
  /** The server's public key, the first event of every stream (new at every start). */
  serverKey: string;
  /** Sweeps old event logs, spent tickets and challenges out of the store, now and then. */
  sweeper: NodeJS.Timeout;
  log: Logger;
}

/**
 * How long a room's `setAudioConf` changes are gathered before they go out, as one batch
 * per member (member-notices.ts): a notice is at most this late.
 */
const NOTICE_WINDOW_MS = 50;

/** How often old event logs and dead tickets and challenges are swept from the store. */
const SWEEP_MS = 5 * 60_000;

export function createVoipServices(opts: VoipSurfaceOptions): VoipServices {
  const { config, audio, log, ports } = opts;
  const busLog = new ThrottledLog(log, 10);
  const node = voipNode(ports.membership);
  const challenges = config.siteEnabled
    ? undefined
    : new ChallengeBook(ports.store, config.ticketTtlSeconds * 1000, config.challengeTtlSeconds * 1000);
  const auth = challenges ? new KeyAuth(challenges) : siteAuth(config, log);
  const events = new EventHub({
    bus: ports.bus,
    store: ports.store,
    busLog,
    keepAliveMs: config.keepAliveSeconds * 1000,
    heartbeats: opts.heartbeats,
    replayEvents: config.replayEvents,
    replayMs: 5 * 60_000,
    maxQueuedBytes: 256 * 1024,
    log,
  });
  const relay = new MediaRelay({
    bus: ports.bus,
    node,
    log,
    busLog,
    inputBufferMs: config.inputBufferMs,
    backlogPackets: Math.ceil(config.oggBacklogMs / FRAME_MS),
    opus: { bitrate: config.opusBitrate, complexity: config.opusComplexity },
    feedCounters: audio.counters,
  });
  const notify: Notify = (to, name, fields) => events.send(to, name, auth.eventData(name, fields));
  const calls = new VoipCalls({
    rooms: opts.rooms,
    audio,
    ringTimeoutMs: config.ringTimeoutSeconds * 1000,
    idleTimeoutMs: config.callIdleSeconds * 1000,
    notify,
    bus: ports.bus,
    store: ports.store,
    node,
    relay,
    log,
    busLog,
  });
  const notices = new MemberNotices<VoipRoom>({
    windowMs: NOTICE_WINDOW_MS,
    members: (room) => (room.group.closed ? undefined : room.group.ids()),
    send: (room, batch) => {
      const items = batch.changes.map((c) => ({
        about: c.id,
        data: auth.eventData('setAudioConf', { from: c.id, roomid: room.id, in: c.mic, out: c.hds }),
      }));
      events.liveBatch(batch.to, 'setAudioConf', items);
    },
    log,
  });
  const rooms: VoipRooms = new VoipRooms({
    registry: opts.rooms,
    audio,
    store: ports.store,
    node,
    relay,
    maxRooms: config.maxRooms,
    maxMembers: config.maxRoomMembers,
    // Gathered per room (member-notices.ts), then live only, not numbered: a store write
    // per member per change made filling a room of 2,000 take minutes (#17.3). Who is in
    // a room now is /listMembers.
    onMemberChange: (room, id, mic, hds) => notices.change(room, id, mic, hds),
    onCreate: (room) => events.broadcast('newRoom', newRoomData(rooms.summary(room))),
    log,
  });
  const media = new MediaSessions({
    auth,
    calls,
    rooms,
    maxRoomMembers: config.maxRoomMembers,
    inputBufferMs: config.inputBufferMs,
    log,
  });
  const serverKey = serverPublicKeyHex();
  const sweeper = setInterval(() => sweep(events, challenges, log), SWEEP_MS);
  sweeper.unref();
  return {
    config,
    auth,
    events,
    notices,
    notify,
    calls,
    rooms,
    media,
    relay,
    tracker: opts.tracker,
    serverKey,
    sweeper,
    log,
  };
}

/** Every node sweeps; deleting what another node deleted first is harmless. */
function sweep(events: EventHub, challenges: ChallengeBook | undefined, log: Logger): void {
  events.sweep().catch((err: unknown) => log.warn({ err }, 'voip: event log sweep failed'));
  challenges?.sweep().catch((err: unknown) => log.warn({ err }, 'voip: ticket sweep failed'));
}

function siteAuth(config: Config['voip'], log: Logger): VoipAuth {
  const site = new SideSite({
    baseUrl: config.siteUrl,
    timeoutMs: config.siteTimeoutMs,
    cacheSeconds: config.siteCacheSeconds,
    log,
  });
  return new SiteAuth(site, config.siteOrigin);
}
