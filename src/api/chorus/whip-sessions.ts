import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ChorusError, isChorusError } from '../../core/errors.js';
import { asUserId } from '../../core/ids.js';
import type { Room } from '../../core/room.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import { asParticipantId, asRoomId, type RoomOptions } from '../../core/room-types.js';
import type { Track } from '../../core/track.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import type { PeerLeg } from '../../media/webrtc/peer-leg.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import {
  NoRespondersError,
  subjectToken,
  type Bus,
  type BusMessage,
  type BusSubscription,
} from '../../ports/bus/bus.js';
import { busJson, readBusJson } from '../bus-json.js';
import { offerUfrag, type IceFragment } from './whip-patch.js';

/** Native rooms are the SFU's conference rooms (as Blue Sky opens them: see native-rooms.ts). */
const conferenceRoom: RoomOptions<null> = { kind: 'conference', leaveWhenIdle: true, metadata: null };

export type WhipKind = 'whip' | 'whep';

/** One WHIP publish or WHEP view held by this node. */
interface LiveSession {
  readonly id: string;
  readonly kind: WhipKind;
  readonly room: string;
  /** The identity that made it (the publisher, or the viewer): the one who may end it. */
  readonly owner: string;
  /** Stops the media (the publisher's tracks end; the viewer's subscription drops). */
  end(reason: string): void;
  /** Forgets the session (its media ended one way or another). */
  forget(): void;
  /** The offer's ICE username fragment: a PATCH naming another asks for an ICE restart. */
  readonly ufrag: string | undefined;
  /** The session's server leg (trickled candidates go there), while it is open. */
  leg(): PeerLeg | undefined;
}

const endQuestion = z.object({
  room: z.string(),
  kind: z.enum(['whip', 'whep']),
  /** Who asks: only the session's own identity may end it; absent: a room admin. */
  by: z.string().optional(),
  /** A PATCH's trickled candidates (RFC 9725 4.3) instead of an end: added to the session's leg. */
  trickle: z
    .object({
      ufrag: z.string().max(256).optional(),
      candidates: z
        .array(z.object({ candidate: z.string().max(512), mid: z.string().max(64).optional() }))
        .max(64),
      end: z.boolean(),
    })
    .optional(),
});
const endAnswer = z.object({
  ended: z.boolean(),
  /** Why the session refused a PATCH it holds (an ICE restart, too many candidates). */
  refused: z.object({ message: z.string().max(512), status: z.number().int() }).optional(),
});
type BusTrickle = NonNullable<z.infer<typeof endQuestion>['trickle']>;

/** A publish whose leg brings no track in this long is no session (the SFU gives the leg up at 20 s). */
const NO_TRACKS_MS = 20_000;

/** How long the node holding a session has to answer a DELETE that landed elsewhere. */
const END_TIMEOUT_MS = 5000;

/**
 * The WHIP publishes and WHEP views of this node, on the SFU: a WHIP session is the
 * participant `identity` publishing (its tracks are the session), a WHEP session is the
 * viewer's subscription to one publisher. Each session answers `chorus.native.session.<id>`
 * on the bus, so a DELETE that a load balancer sent to another node still ends it (and an
 * unknown id gets no responders: 404).
 */
export class WhipSessions {
  private readonly live = new Map<string, LiveSession>();
  /** The WHIP session of each (room, identity): a newer one replaces it. */
  private readonly publishes = new Map<string, LiveSession>();
  /** The WHEP session of each (room, viewer, publisher): a newer one replaces it. */
  private readonly views = new Map<string, LiveSession>();
  private readonly busLog: ThrottledLog;

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly sfu: Sfu,
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {
    this.busLog = new ThrottledLog(log, 5);
  }

  /** `identity` publishes into `room` (WHIP); the session id and the SDP answer. */
  async publish(roomName: string, identity: string, offer: string): Promise<{ id: string; answer: string }> {
    const { room, fresh } = this.open(roomName);
    const participant = room.join(asParticipantId(identity));
    // The session is the tracks this leg publishes (they arrive around the answer); a
    // republish by the same identity replaces the leg, and so the session.
    const tracks: Track[] = [];
    const offs: Array<() => void> = [];
    let ended = 0;
    const publishKey = `${roomName}\u0000${identity}`;
    offs.push(
      participant.events.on('trackPublished', (e) => {
        tracks.push(e.track);
        offs.push(
          e.track.events.on('ended', () => {
            if (++ended === tracks.length) this.finish(session, 'tracks ended');
          }),
        );
      }),
      participant.events.on('left', (e) => this.finish(session, e.reason)),
    );
    const id = newSessionId();
    const session = this.track({
      id,
      kind: 'whip',
      room: roomName,
      owner: identity,
      ufrag: offerUfrag(offer),
      leg: () => this.sfu.legOf(room, asUserId(identity), {}),
      end: (reason) => {
        for (const t of [...tracks]) t.close(reason);
      },
      forget: () => {
        clearTimeout(noTracks);
        for (const off of offs.splice(0)) off();
        if (this.publishes.get(publishKey) === session) this.publishes.delete(publishKey);
      },
    });
    const replaced = this.publishes.get(publishKey);
    if (replaced) this.finish(replaced, 'replaced by a new publish');
    this.publishes.set(publishKey, session);
    // A leg whose tracks never come is the SFU's to give up; the session goes with it.
    const noTracks = setTimeout(() => {
      if (tracks.length === 0) this.finish(session, 'no tracks');
    }, NO_TRACKS_MS);
    noTracks.unref();
    let answer: string;
    try {
      answer = await this.sfu.publish(room, asUserId(identity), offer);
    } catch (err) {
      this.finish(session, 'refused');
      this.undoJoin(room, fresh, identity);
      throw err;
    }
    this.log.info({ room: roomName, user: identity, session: id }, 'whip: publishing');
    return { id, answer };
  }

  /** `viewer` receives `publisher`'s tracks (WHEP); the session id and the SDP answer. */
  async view(
    roomName: string,
    viewer: string,
    publisher: string,
    offer: string,
  ): Promise<{ id: string; answer: string }> {
    const { room, fresh } = this.open(roomName);
    let answer: string;
    try {
      answer = await this.sfu.subscribe(room, asUserId(viewer), asUserId(publisher), offer);
    } catch (err) {
      this.undoJoin(room, fresh, viewer);
      throw err;
    }
    const participant = room.participant(asParticipantId(viewer));
    const id = newSessionId();
    const viewKey = `${roomName}\u0000${viewer}\u0000${publisher}`;
    const offs: Array<() => void> = [];
    const session = this.track({
      id,
      kind: 'whep',
      room: roomName,
      owner: viewer,
      ufrag: offerUfrag(offer),
      leg: () => this.sfu.legOf(room, asUserId(viewer), { publisher: asUserId(publisher) }),
      end: (reason) => participant?.unsubscribe(publisher, reason),
      forget: () => {
        for (const off of offs.splice(0)) off();
        if (this.views.get(viewKey) === session) this.views.delete(viewKey);
      },
    });
    // The SFU closed the leg of an earlier view of the same publisher by the same viewer.
    const replaced = this.views.get(viewKey);
    if (replaced) this.finish(replaced, 'replaced by a new view');
    this.views.set(viewKey, session);
    if (!participant?.subscriptions.has(publisher)) {
      this.finish(session, 'subscription gone');
    } else {
      offs.push(
        participant.events.on('unsubscribed', (e) => {
          if (e.source === publisher) this.finish(session, e.reason);
        }),
        participant.events.on('left', (e) => this.finish(session, e.reason)),
      );
    }
    this.log.info({ room: roomName, user: viewer, publisher, session: id }, 'whep: viewing');
    return { id, answer };
  }

  /**
   * Ends session `id` of `room` for `by` (its owner; undefined: a room admin), wherever
   * it is held; false when no node holds such a session (ended already, never existed, of
   * another room, kind or owner).
   */
  async end(kind: WhipKind, room: string, id: string, by: string | undefined): Promise<boolean> {
    const local = this.live.get(id);
    if (local) return this.endLocal(local, { kind, room, by });
    try {
      const reply = await this.bus.request(sessionSubject(id), busJson({ room, kind, by }), {
        timeoutMs: END_TIMEOUT_MS,
      });
      return (
        readBusJson(endAnswer, reply, { surface: 'chorus', subject: sessionSubject(id) }, this.busLog)
          ?.ended ?? false
      );
    } catch (err) {
      if (err instanceof NoRespondersError) return false;
      throw err;
    }
  }

  /**
   * Adds a PATCH's trickled candidates to session `id` of `room` for `by` (as `end`),
   * wherever it is held; false when no node holds such a session. An ICE restart (other
   * credentials than the offer's) is ChorusError 422; too many candidates 400.
   */
  async trickle(
    kind: WhipKind,
    room: string,
    id: string,
    by: string | undefined,
    frag: IceFragment,
  ): Promise<boolean> {
    const trickle: BusTrickle = {
      ...(frag.ufrag === undefined ? {} : { ufrag: frag.ufrag }),
      candidates: frag.candidates.map((c) => ({
        candidate: c.candidate,
        ...(c.mid === undefined ? {} : { mid: c.mid }),
      })),
      end: frag.end,
    };
    const local = this.live.get(id);
    if (local) return this.trickleLocal(local, { kind, room, by }, trickle);
    const subject = sessionSubject(id);
    let answer: z.infer<typeof endAnswer> | undefined;
    try {
      const reply = await this.bus.request(subject, busJson({ room, kind, by, trickle }), {
        timeoutMs: END_TIMEOUT_MS,
      });
      answer = readBusJson(endAnswer, reply, { surface: 'chorus', subject }, this.busLog);
    } catch (err) {
      if (err instanceof NoRespondersError) return false;
      throw err;
    }
    if (answer?.refused)
      throw new ChorusError('invalid_argument', answer.refused.message, {
        httpStatus: answer.refused.status,
      });
    return answer?.ended ?? false;
  }

  get size(): number {
    return this.live.size;
  }

  /** Ends every session of this node (the server is stopping). */
  close(): void {
    for (const s of [...this.live.values()]) {
      s.end('server shutting down');
      this.finish(s, 'server shutting down');
    }
  }

  private trickleLocal(
    s: LiveSession,
    q: { kind: WhipKind; room: string; by?: string | undefined },
    t: BusTrickle,
  ): boolean {
    if (s.kind !== q.kind || s.room !== q.room || (q.by !== undefined && q.by !== s.owner)) return false;
    if (t.ufrag !== undefined && s.ufrag !== undefined && t.ufrag !== s.ufrag)
      throw new ChorusError('invalid_argument', 'ICE restarts are not supported (start a new session)', {
        httpStatus: 422,
      });
    const leg = s.leg();
    if (!leg) return false;
    try {
      for (const c of t.candidates) leg.remoteCandidates.add(c.candidate, c.mid);
    } catch (err) {
      if (!isChorusError(err)) throw err;
      throw new ChorusError('invalid_argument', err.message, { httpStatus: 400 });
    }
    if (t.end) leg.remoteCandidates.end();
    return true;
  }

  private endLocal(s: LiveSession, q: { kind: WhipKind; room: string; by?: string | undefined }): boolean {
    if (s.kind !== q.kind || s.room !== q.room || (q.by !== undefined && q.by !== s.owner)) return false;
    s.end(`${q.kind} session deleted`);
    this.finish(s, 'deleted');
    return true;
  }

  /** Registers `s` and its bus subject (subscribed while the session lives). */
  private track(s: LiveSession): LiveSession & { sub?: BusSubscription } {
    const held: LiveSession & { sub?: BusSubscription } = s;
    this.live.set(s.id, held);
    held.sub = this.bus.subscribe(sessionSubject(s.id), (m) => this.answerEnd(held, m));
    return held;
  }

  private finish(s: LiveSession & { sub?: BusSubscription }, reason: string): void {
    if (this.live.get(s.id) !== s) return;
    this.live.delete(s.id);
    s.sub?.unsubscribe();
    s.forget();
    this.log.info({ room: s.room, session: s.id, reason }, `${s.kind}: session ended`);
  }

  private answerEnd(s: LiveSession, msg: BusMessage): void {
    try {
      const q = readBusJson(endQuestion, msg.data, { surface: 'chorus', subject: msg.subject }, this.busLog);
      if (!q) return;
      if (q.trickle) {
        try {
          const ended = this.live.get(s.id) === s && this.trickleLocal(s, q, q.trickle);
          msg.respond?.(busJson({ ended }));
        } catch (err) {
          if (!isChorusError(err)) throw err;
          const status = err.details.httpStatus ?? 400;
          msg.respond?.(busJson({ ended: true, refused: { message: err.message, status } }));
        }
        return;
      }
      const ended = this.live.get(s.id) === s && this.endLocal(s, q);
      msg.respond?.(busJson({ ended }));
    } catch (err) {
      this.log.error({ err, subject: msg.subject }, 'chorus: session bus handler threw');
    }
  }

  private open(name: string): { room: Room<null>; fresh: boolean } {
    const fresh = this.rooms.get('conference', name) === undefined;
    return { room: this.rooms.open(asRoomId(name), conferenceRoom), fresh };
  }

  /** A refused publish or view leaves no idle participant behind, nor a room it opened. */
  private undoJoin(room: Room<null>, fresh: boolean, identity: string): void {
    const p = room.participant(asParticipantId(identity));
    if (p?.idle) p.leave('negotiation failed');
    if (fresh && room.size === 0) room.close('empty');
  }
}

function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

function sessionSubject(id: string): string {
  return `chorus.native.session.${subjectToken(id)}`;
}
