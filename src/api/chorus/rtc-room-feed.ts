import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Room } from '../../core/room.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import type { Participant } from '../../core/participant.js';
import type { Track } from '../../core/track.js';
import type { ActiveSpeakers } from '../../media/webrtc/active-speakers.js';
import type { SpeakerLevel } from '../../media/webrtc/active-speaker-detector.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { subjectToken, type Bus, type BusMessage, type BusSubscription } from '../../ports/bus/bus.js';
import { busJson, readBusJson } from '../bus-json.js';
import { LEAVE_REASONS } from './rtc-close-codes.js';
import {
  roomFeedMessage,
  type RoomFeedEvent,
  type RtcParticipantInfo,
  type RtcTrackInfo,
} from './rtc-schemas.js';

/** A participant's display name and metadata (from its token), '' when unknown. */
export type DescribeParticipant = (room: string, identity: string) => { name: string; metadata: string };

/**
 * `heard`: the message's fingerprint (a hash of its bytes, the same on every node), so a
 * session moving between nodes can tell which messages both nodes heard.
 */
export type RoomFeedListener = (event: RoomFeedEvent, heard: string) => void;

const KIND = 'conference';

export const roomFeedSubject = (room: string): string => `chorus.rtc.room.${subjectToken(room)}`;

export function rtcTrackInfo(t: Track): RtcTrackInfo {
  return { id: t.id, kind: t.kind, source: t.source, codec: t.codec, muted: t.muted };
}

export function rtcParticipantInfo(
  p: Participant,
  node: string,
  described: { name: string; metadata: string },
): RtcParticipantInfo {
  return { identity: p.id, node, ...described, tracks: [...p.tracks.values()].map(rtcTrackInfo) };
}

/**
 * What happens in each conference room, for every node's signalling sessions: this node
 * publishes its own rooms' changes (joins, leaves, tracks, mutes) on
 * `chorus.rtc.room.<room>`, and each node that has sessions in a room listens there. Local
 * changes take the same way back (the bus delivers to its sender too), so a session sees
 * one ordered stream whatever node the change happened on, and nothing asks "clustered?".
 */
export class RtcRoomFeed {
  private readonly listeners = new Map<string, { sub: BusSubscription; fns: Set<RoomFeedListener> }>();
  private readonly busLog: ThrottledLog;
  private readonly offNewRoom: () => void;
  private readonly offSpeakers: () => void;
  /** `room\0identity` joining as a session moved from another node: not announced. */
  private readonly quiet = new Set<string>();

  constructor(
    rooms: RoomRegistry,
    private readonly bus: Bus,
    private readonly node: string,
    private readonly describe: DescribeParticipant,
    /** The SFU's active speakers among this node's publishers. */
    private readonly speakers: Pick<ActiveSpeakers, 'events' | 'speakers'>,
    private readonly log: Logger,
  ) {
    this.busLog = new ThrottledLog(log, 5);
    for (const room of rooms.list(KIND)) this.watch(room);
    this.offNewRoom = rooms.observer.on('newroom', ({ room }) => {
      if (room.kind === KIND) this.watch(room);
    });
    this.offSpeakers = speakers.events.on('speakersChanged', (e) => this.publishSpeakers(e.room, e.speakers));
  }

  private publishSpeakers(room: string, speakers: readonly SpeakerLevel[]): void {
    this.publish(room, {
      type: 'speakers',
      node: this.node,
      speakers: speakers.map((s) => ({ identity: s.participant, level: Math.min(1, Math.max(0, s.level)) })),
    });
  }

  /** Tells every node's sessions in `room` (this node's too). */
  publish(room: string, event: RoomFeedEvent): void {
    this.bus.publish(roomFeedSubject(room), busJson({ room, node: this.node, event }));
  }

  /** Calls `fn` with each change of `room` until the returned function is called. */
  listen(room: string, fn: RoomFeedListener): () => void {
    let entry = this.listeners.get(room);
    if (!entry) {
      const subject = roomFeedSubject(room);
      const sub = this.bus.subscribe(subject, (m) => this.deliver(room, subject, m));
      entry = { sub, fns: new Set() };
      this.listeners.set(room, entry);
    }
    const fns = entry.fns;
    fns.add(fn);
    return () => {
      fns.delete(fn);
      const now = this.listeners.get(room);
      if (now && now.fns.size === 0) {
        now.sub.unsubscribe();
        this.listeners.delete(room);
      }
    };
  }

  /**
   * Runs `join` (a participant joining `room`) without announcing it: a session resumed
   * here from another node, whose participant the room never saw leave.
   */
  joinQuietly<T>(room: string, identity: string, join: () => T): T {
    const key = `${room}\u0000${identity}`;
    this.quiet.add(key);
    try {
      return join();
    } finally {
      this.quiet.delete(key);
    }
  }

  /** True while `identity` joins `room` as a session moved from another node. */
  joiningQuietly(room: string, identity: string): boolean {
    return this.quiet.has(`${room}\u0000${identity}`);
  }

  close(): void {
    this.offNewRoom();
    this.offSpeakers();
    for (const { sub } of this.listeners.values()) sub.unsubscribe();
    this.listeners.clear();
  }

  private deliver(room: string, subject: string, msg: BusMessage): void {
    try {
      const m = readBusJson(roomFeedMessage, msg.data, { surface: 'chorus', subject }, this.busLog);
      // The subject names the room too: both must agree, or the message is not one.
      if (!m || m.room !== room) return;
      const heard = createHash('sha1').update(msg.data).digest('base64url');
      for (const fn of [...(this.listeners.get(room)?.fns ?? [])]) {
        try {
          fn(m.event, heard);
        } catch (err) {
          this.log.error({ err, room }, 'chorus: room feed listener threw');
        }
      }
      // Speakers are told as they change; someone joining (on any node) would not hear
      // who already speaks until the next change, so each node says its own again.
      if (m.event.type === 'participantJoined') {
        const now = this.speakers.speakers(room);
        if (now.length > 0) this.publishSpeakers(room, now);
      }
    } catch (err) {
      this.log.error({ err, subject }, 'chorus: room feed handler threw');
    }
  }

  /** Publishes a local conference room's changes until it closes. */
  private watch(room: Room): void {
    const name = room.id as string;
    const offs: Array<() => void> = [];
    const watchTrack = (p: Participant, t: Track): void => {
      const off = t.events.on('muted', (e) =>
        this.publish(name, {
          type: 'trackMuted',
          identity: p.id,
          trackId: t.id,
          muted: e.muted,
          byServer: e.byServer,
        }),
      );
      t.events.on('ended', off);
    };
    offs.push(
      room.events.on('participantJoined', ({ participant: p }) => {
        if (this.joiningQuietly(name, p.id)) return;
        this.publish(name, {
          type: 'participantJoined',
          participant: rtcParticipantInfo(p, this.node, this.describe(name, p.id)),
        });
      }),
      room.events.on('participantLeft', ({ participant: p, reason }) => {
        // A session moved to another node: the room sees its tracks go and come back only.
        if (reason === LEAVE_REASONS.moved) return;
        this.publish(name, { type: 'participantLeft', identity: p.id, reason: clip(reason) });
      }),
      room.events.on('trackPublished', ({ participant: p, track }) => {
        watchTrack(p, track);
        this.publish(name, { type: 'trackPublished', identity: p.id, track: rtcTrackInfo(track) });
      }),
      room.events.on('trackEnded', ({ participant: p, track, reason }) =>
        this.publish(name, {
          type: 'trackUnpublished',
          identity: p.id,
          trackId: track.id,
          reason: clip(reason),
        }),
      ),
    );
    room.events.on('close', () => {
      for (const off of offs) off();
    });
  }
}

const clip = (reason: string): string => reason.slice(0, 256);
