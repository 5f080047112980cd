import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { RoomRegistry } from '../../core/room-registry.js';
import { asRoomId, type RoomOptions } from '../../core/room-types.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import type { Bus, BusSubscription } from '../../ports/bus/bus.js';
import type { Membership } from '../../ports/membership/membership.js';
import type { AccessClaims } from './access-token.js';
import type { NativeRooms } from './native-rooms.js';
import { LEAVE_REASONS, RTC_CLOSE } from './rtc-close-codes.js';
import type { RtcRoomFeed } from './rtc-room-feed.js';
import {
  askForSession,
  offerSession,
  unheard,
  type HandoverReply,
  type HandoverRequest,
} from './rtc-handover.js';
import type { RoomFeedEvent } from './rtc-schemas.js';
import { RtcSession, type RtcSessionContext } from './rtc-session.js';

/** A conference room as Blue Sky opens it: the same live room, whoever joins first. */
const conferenceRoom: RoomOptions<null> = { kind: 'conference', leaveWhenIdle: true, metadata: null };

/** A token that may join: it names its room and its identity. */
export type JoinClaims = AccessClaims & { identity: string; room: string };

const keyOf = (room: string, identity: string): string => `${room}\u0000${identity}`;

/**
 * How long a stopping node keeps the sessions whose sockets its shutdown closed (1001,
 * "resume elsewhere"), for their clients to resume them on another node.
 */
const HANDOVER_ON_CLOSE_MS = 3_000;

/**
 * This node's native signalling sessions: by resume token (a reconnecting client finds
 * its session) and by room and identity (a second join of the same identity replaces the
 * first, on whichever node either is).
 */
export class RtcSessions {
  private readonly byToken = new Map<string, RtcSession>();
  private readonly byIdentity = new Map<string, RtcSession>();
  /** Each session's handover subscription (another node may resume it). */
  private readonly offers = new Map<RtcSession, BusSubscription>();
  private readonly busLog: ThrottledLog;
  private readonly ctx: RtcSessionContext;

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly nativeRooms: NativeRooms,
    sfu: Sfu,
    feed: RtcRoomFeed,
    liveness: Pick<RtcSessionContext, 'resumeGraceMs' | 'heartbeats'>,
    private readonly log: Logger,
    private readonly bus: Bus,
    private readonly membership: Pick<Membership, 'selfId' | 'nodes'>,
  ) {
    this.busLog = new ThrottledLog(log, 5);
    this.ctx = {
      sfu,
      nativeRooms,
      feed,
      log,
      clientErrors: new ThrottledLog(log),
      ...liveness,
      ended: (s) => {
        if (this.byToken.get(s.resumeToken) === s) this.byToken.delete(s.resumeToken);
        const k = keyOf(s.roomName, s.identity);
        if (this.byIdentity.get(k) === s) this.byIdentity.delete(k);
        this.offers.get(s)?.unsubscribe();
        this.offers.delete(s);
      },
    };
  }

  /** The display name and metadata of a participant with a session here ('' otherwise). */
  describe(room: string, identity: string): { name: string; metadata: string } {
    const s = this.byIdentity.get(keyOf(room, identity));
    return { name: s?.claims.name ?? '', metadata: s?.claims.metadata ?? '' };
  }

  /**
   * A new connection: resumes the session `resume` names when it is still here and the
   * token is the same participant's, or takes it over from the node holding it, else
   * starts a new session (the identity's earlier one, on any node, leaves first).
   */
  async connect(
    socket: WebSocket,
    claims: JoinClaims,
    resume: { token: string; lastSeq: number } | undefined,
  ): Promise<void> {
    if (resume) {
      const s = this.byToken.get(resume.token);
      if (s && !s.ended && s.identity === claims.identity && s.roomName === claims.room) {
        s.resume(socket, resume.lastSeq);
        return;
      }
      if (!s && (await this.takeOver(socket, claims, resume))) return;
    }
    const k = keyOf(claims.room, claims.identity);
    this.byIdentity.get(k)?.end(LEAVE_REASONS.duplicateIdentity, RTC_CLOSE.duplicateIdentity);
    // Wherever else the identity is (another node, or a Blue Sky client), it leaves.
    await this.nativeRooms.removeParticipant(claims.room, claims.identity, LEAVE_REASONS.duplicateIdentity);
    if (socket.readyState !== socket.OPEN) return;
    const room = this.rooms.open(asRoomId(claims.room), conferenceRoom);
    const session = new RtcSession(this.ctx, claims, room);
    this.add(session);
    this.log.info(
      { room: claims.room, user: claims.identity, resumeFailed: resume !== undefined },
      'chorus rtc: session open',
    );
    session.start(socket, resume !== undefined);
  }

  /**
   * Asks the node holding the session `resume` names to hand it over and continues it
   * here; false when none did (the caller starts a fresh session).
   */
  private async takeOver(
    socket: WebSocket,
    claims: JoinClaims,
    resume: { token: string; lastSeq: number },
  ): Promise<boolean> {
    const log = this.log.child({ room: claims.room, user: claims.identity });
    const request: HandoverRequest = {
      room: claims.room,
      identity: claims.identity,
      lastSeq: resume.lastSeq,
      node: this.membership.selfId,
    };
    // Listening before asking: what the room says while the holder hands over is heard here.
    const early: Array<{ event: RoomFeedEvent; heard: string }> = [];
    const offEarly = this.ctx.feed.listen(claims.room, (event, heard) => early.push({ event, heard }));
    const handed = await askForSession(this.bus, resume.token, request, this.busLog, log).catch(
      (err: unknown) => {
        offEarly();
        throw err;
      },
    );
    if (!handed) {
      offEarly();
      return false;
    }
    // The identity may have joined here meanwhile (a second tab): that one gives way.
    this.byIdentity
      .get(keyOf(claims.room, claims.identity))
      ?.end(LEAVE_REASONS.duplicateIdentity, RTC_CLOSE.duplicateIdentity);
    const room = this.rooms.open(asRoomId(claims.room), conferenceRoom);
    const session = new RtcSession(this.ctx, claims, room, { resumeToken: resume.token, seq: handed.seq });
    this.add(session);
    log.info(
      { lastSeq: resume.lastSeq, seq: handed.seq, replayed: handed.missed?.length },
      'chorus rtc: session resumed from another node',
    );
    session.startMoved(socket, handed.missed, unheard(early, handed.heard), handed.speakers);
    // After the session listens: the room's bus subscription stays up in between.
    offEarly();
    return true;
  }

  private add(session: RtcSession): void {
    this.byToken.set(session.resumeToken, session);
    this.byIdentity.set(keyOf(session.roomName, session.identity), session);
    this.offers.set(
      session,
      offerSession(this.bus, session.resumeToken, (r) => this.handOver(session, r), this.busLog, this.log),
    );
  }

  /** Another node asks for `session`: handed over when the same participant asks, in time. */
  private handOver(session: RtcSession, r: HandoverRequest): HandoverReply {
    if (session.ended) return { ok: false, reason: 'the session has ended' };
    if (r.identity !== session.identity || r.room !== session.roomName)
      return { ok: false, reason: 'another participant' };
    this.log.info(
      { room: r.room, user: r.identity, to: r.node },
      'chorus rtc: session handed over to another node',
    );
    return { ok: true, ...session.handOver(r.lastSeq) };
  }

  /**
   * Ends every session (the server is stopping; its sockets were closed with 1001): when
   * other nodes are up, first waits a moment for clients to resume their sessions there.
   */
  async close(): Promise<void> {
    const until = Date.now() + HANDOVER_ON_CLOSE_MS;
    const others = (): boolean => this.membership.nodes().some((n) => n.id !== this.membership.selfId);
    if (this.byToken.size > 0 && others())
      this.log.info({ sessions: this.byToken.size }, 'chorus rtc: stopping: sessions may resume elsewhere');
    while (this.byToken.size > 0 && others() && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 100));
    for (const s of [...this.byToken.values()]) s.end('server shutting down', RTC_CLOSE.goingAway, true);
  }
}
