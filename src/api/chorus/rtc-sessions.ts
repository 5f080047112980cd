import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { RoomRegistry } from '../../core/room-registry.js';
import { asRoomId, type RoomOptions } from '../../core/room-types.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import type { AccessClaims } from './access-token.js';
import type { NativeRooms } from './native-rooms.js';
import { LEAVE_REASONS, RTC_CLOSE } from './rtc-close-codes.js';
import type { RtcRoomFeed } from './rtc-room-feed.js';
import { RtcSession, type RtcSessionContext } from './rtc-session.js';

/** A conference room as Blue Sky opens it: the same live room, whoever joins first. */
const conferenceRoom: RoomOptions<null> = { kind: 'conference', leaveWhenIdle: true, metadata: null };

/** A token that may join: it names its room and its identity. */
export type JoinClaims = AccessClaims & { identity: string; room: string };

const keyOf = (room: string, identity: string): string => `${room}\u0000${identity}`;

/**
 * This node's native signalling sessions: by resume token (a reconnecting client finds
 * its session) and by room and identity (a second join of the same identity replaces the
 * first, on whichever node either is).
 */
export class RtcSessions {
  private readonly byToken = new Map<string, RtcSession>();
  private readonly byIdentity = new Map<string, RtcSession>();
  private readonly ctx: RtcSessionContext;

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly nativeRooms: NativeRooms,
    sfu: Sfu,
    feed: RtcRoomFeed,
    liveness: Pick<RtcSessionContext, 'resumeGraceMs' | 'heartbeats'>,
    private readonly log: Logger,
  ) {
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
   * token is the same participant's, else starts a new session (the identity's earlier
   * one, on any node, leaves first).
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
    }
    const k = keyOf(claims.room, claims.identity);
    this.byIdentity.get(k)?.end(LEAVE_REASONS.duplicateIdentity, RTC_CLOSE.duplicateIdentity);
    // Wherever else the identity is (another node, or a Blue Sky client), it leaves.
    await this.nativeRooms.removeParticipant(claims.room, claims.identity, LEAVE_REASONS.duplicateIdentity);
    if (socket.readyState !== socket.OPEN) return;
    const room = this.rooms.open(asRoomId(claims.room), conferenceRoom);
    const session = new RtcSession(this.ctx, claims, room);
    this.byToken.set(session.resumeToken, session);
    this.byIdentity.set(k, session);
    this.log.info(
      { room: claims.room, user: claims.identity, resumeFailed: resume !== undefined },
      'chorus rtc: session open',
    );
    session.start(socket, resume !== undefined);
  }

  /** Ends every session (the server is stopping): clients are told they may reconnect. */
  close(): void {
    for (const s of [...this.byToken.values()]) s.end('server shutting down', RTC_CLOSE.goingAway, true);
  }
}
