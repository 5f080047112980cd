import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { ChorusError, isChorusError } from '../../core/errors.js';
import { asUserId } from '../../core/ids.js';
import type { Participant } from '../../core/participant.js';
import type { Room } from '../../core/room.js';
import { asParticipantId } from '../../core/room-types.js';
import { publishedTrackId, type Sfu } from '../../media/webrtc/sfu.js';
import { clipClientText, type ThrottledLog } from '../../lib/throttled-log.js';
import { TokenBucket } from '../../lib/token-bucket.js';
import type { HeartbeatScheduler } from '../../lib/heartbeat-scheduler.js';
import type { AccessClaims } from './access-token.js';
import type { NativeRooms } from './native-rooms.js';
import { LEAVE_REASONS, RTC_CLOSE, rtcCloseFor, rtcErrorCode } from './rtc-close-codes.js';
import { applyTrackSettings, watchLayersWanted } from './rtc-layers.js';
import type { RtcRoomFeed } from './rtc-room-feed.js';
import { RtcTrickle, type Trickled, type TrickleTarget } from './rtc-trickle.js';
import { HEARD_KEPT, type SpeakersOfNode } from './rtc-handover.js';
import { RtcMessageLog, type SentMessage } from './rtc-message-log.js';
import { publishSources } from './rtc-publish-sources.js';
import { clientMessage, MAIN_PC, type ClientMessage, type RoomFeedEvent } from './rtc-schemas.js';

/** What every session of a node shares. */
export interface RtcSessionContext {
  sfu: Sfu;
  nativeRooms: NativeRooms;
  feed: RtcRoomFeed;
  log: Logger;
  clientErrors: ThrottledLog;
  /** How long a dropped session waits for its client to resume. */
  resumeGraceMs: number;
  /** Pings each socket; one that does not answer is dropped (and the session waits for a resume). */
  heartbeats: HeartbeatScheduler;
  /** Called once when the session ends (the registry forgets it). */
  ended(session: RtcSession): void;
}

/** Each socket is pinged this often; one silent from a ping to the next is dropped. */
const PING_EVERY_MS = 15_000;
/**
 * Client messages a session may send per second (and in a burst): each data message is
 * fanned out to the whole room, so one client must not flood it.
 */
const MESSAGES_PER_SECOND = 50;
const MESSAGE_BURST = 100;
/**
 * Trickled candidates have their own budget: joining a big room a client trickles a few
 * per subscription at once, which must not starve its requests (each leg takes 64 at most).
 */
const TRICKLES_PER_SECOND = 100;
const TRICKLE_BURST = 400;
/**
 * A pseudo-source every signalling participant "receives": it keeps the participant
 * non-idle, so the room does not let it go when its media stops (an unpublish, a dropped
 * leg awaiting a resume). No identity contains a control character, so none collides.
 */
const SIGNALLING_SOURCE = '\u0000rtc';

type Outgoing = Record<string, unknown> & { type: string };

/**
 * One participant's native signalling session: its place in the room, the messages it
 * was sent (numbered, the last ones kept for a resume), and the socket it is reached on,
 * which may drop and be replaced by a resuming one within the grace period.
 */
export class RtcSession {
  readonly resumeToken: string;
  readonly identity: string;
  readonly roomName: string;
  private socket: WebSocket | undefined;
  private readonly sent: RtcMessageLog;
  private readonly rate = new TokenBucket(MESSAGES_PER_SECOND, MESSAGE_BURST);
  private readonly trickleRate = new TokenBucket(TRICKLES_PER_SECOND, TRICKLE_BURST);
  private participant: Participant | undefined;
  /** Room changes heard before `join` went out; afterwards undefined. */
  private pending: RoomFeedEvent[] | undefined = [];
  private ready: Promise<void> = Promise.resolve();
  private offFeed: () => void = () => undefined;
  /** Stops the SFU's "layers wanted" of my tracks reaching me. */
  private offLayers: () => void = () => undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private endedFlag = false;
  private readonly log: Logger;
  /** Each node's speakers in the room (each detects among its own publishers). */
  private readonly speakersByNode = new Map<string, Array<{ identity: string; level: number }>>();
  /** The last `speakers` list sent (JSON), so a list said again is not sent twice. */
  private speakersSaid = '[]';
  /** The fingerprints of the last room feed messages heard (for a move to another node). */
  private readonly heard: string[] = [];
  /** Trickled client candidates, routed to (or held for) their legs. */
  private readonly trickle = new RtcTrickle((t) =>
    this.ctx.sfu.legOf(
      this.room,
      asUserId(this.identity),
      'pc' in t ? { pc: t.pc === MAIN_PC ? undefined : t.pc } : { publisher: asUserId(t.subscription) },
    ),
  );

  constructor(
    private readonly ctx: RtcSessionContext,
    readonly claims: AccessClaims & { identity: string; room: string },
    private readonly room: Room,
    /** A session handed over by another node: its resume token and the last `seq` sent there. */
    moved?: { resumeToken: string; seq: number },
  ) {
    this.resumeToken = moved?.resumeToken ?? randomBytes(18).toString('base64url');
    this.sent = new RtcMessageLog(moved?.seq ?? 0);
    this.identity = claims.identity;
    this.roomName = claims.room;
    this.log = ctx.log.child({ room: this.roomName, user: this.identity });
  }

  get ended(): boolean {
    return this.endedFlag;
  }

  /** Joins the room and sends `join`; `resumeFailed` when this answers a resume that could not be. */
  start(socket: WebSocket, resumeFailed: boolean): void {
    this.use(socket);
    this.offFeed = this.ctx.feed.listen(this.roomName, (e, heard) => this.onHeard(e, heard));
    this.offLayers = watchLayersWanted(this.ctx.sfu, this.room.id, this.identity, (m) => this.send(m));
    this.ready = this.join(resumeFailed).catch((err: unknown) => {
      const code = isChorusError(err) ? err.code : 'internal';
      if (code === 'internal') this.log.error({ err }, 'chorus rtc: join failed');
      else this.log.warn({ code, message: (err as Error).message }, 'chorus rtc: join refused');
      this.sendError(undefined, err);
      this.end((err as Error).message, rtcCloseFor(code));
    });
  }

  /** A resuming client's socket: replays what it missed after `lastSeq`, or resends the state. */
  resume(socket: WebSocket, lastSeq: number): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    const old = this.socket;
    this.use(socket);
    old?.close(RTC_CLOSE.normal, 'replaced by a resumed connection');
    this.log.info({ lastSeq, seq: this.sent.lastSeq }, 'chorus rtc: session resumed');
    const missed = this.sent.missedAfter(lastSeq);
    if (missed) {
      socket.send(JSON.stringify({ type: 'resumed', seq: 0, replayed: missed.length }));
      for (const m of missed) socket.send(m.text);
      return;
    }
    this.ready = this.sendJoin(false).catch((err: unknown) => {
      this.sendError(undefined, err);
      this.end('could not resend the room state', RTC_CLOSE.unavailable);
    });
  }

  /**
   * Continues a session another node handed over: the participant joins here without
   * being announced (the others never saw it leave), then `resumed` with `mediaReset`
   * (its peer connections pointed at the other node's SFU: publish and subscribe again)
   * and the missed messages with their original `seq`; a full `join` marked
   * `resumeFailed` when they were no longer all kept.
   */
  startMoved(
    socket: WebSocket,
    missed: SentMessage[] | undefined,
    /** Room changes this node heard while the other handed over, that one had not. */
    early: Array<{ event: RoomFeedEvent; heard: string }>,
    /** Who speaks, as each node last told the session on the other node. */
    speakers: readonly SpeakersOfNode[] = [],
  ): void {
    for (const s of speakers) if (s.speakers.length > 0) this.speakersByNode.set(s.node, s.speakers);
    this.use(socket);
    this.offFeed = this.ctx.feed.listen(this.roomName, (e, heard) => this.onHeard(e, heard));
    this.offLayers = watchLayersWanted(this.ctx.sfu, this.room.id, this.identity, (m) => this.send(m));
    const p = this.ctx.feed.joinQuietly(this.roomName, this.identity, () =>
      this.room.join(asParticipantId(this.identity)),
    );
    this.watchParticipant(p);
    if (missed === undefined) {
      for (const e of early) this.onHeard(e.event, e.heard); // kept in `pending` until the join
      this.ready = this.sendJoin(true).catch((err: unknown) => {
        this.sendError(undefined, err);
        this.end('could not send the room state', RTC_CLOSE.unavailable);
      });
    } else {
      this.pending = undefined;
      socket.send(JSON.stringify({ type: 'resumed', seq: 0, replayed: missed.length, mediaReset: true }));
      for (const m of missed) {
        this.sent.keep(m);
        socket.send(m.text);
      }
      for (const e of early) this.onHeard(e.event, e.heard);
    }
    // The socket may have gone while the other node answered: wait for a resume here.
    if (socket.readyState !== socket.OPEN && this.socket === socket) this.awaitResume();
  }

  /**
   * Another node resumes this session: what it needs to continue (the last `seq` and the
   * messages after `lastSeq`, absent when no longer all kept), and the session ends here
   * with the participant leaving as moved (not announced to the room).
   */
  handOver(lastSeq: number): {
    seq: number;
    missed: SentMessage[] | undefined;
    heard: string[];
    speakers: SpeakersOfNode[];
  } {
    const missed = this.sent.missedAfter(lastSeq);
    const seq = this.sent.lastSeq;
    this.end(LEAVE_REASONS.moved, RTC_CLOSE.normal);
    const speakers = [...this.speakersByNode].map(([node, list]) => ({ node, speakers: list }));
    return { seq, missed, heard: [...this.heard], speakers };
  }

  /** Ends the session (idempotent): the participant leaves, the socket closes with `code`. */
  end(reason: string, code: number, canReconnect = false): void {
    if (this.endedFlag) return;
    this.endedFlag = true;
    clearTimeout(this.graceTimer);
    this.offFeed();
    this.offLayers();
    this.participant?.leave(reason);
    const socket = this.socket;
    this.socket = undefined;
    if (socket && socket.readyState === socket.OPEN) {
      this.send({ type: 'leave', reason, closeCode: code, canReconnect }, socket);
      socket.close(code, closeReason(reason));
    }
    this.log.info({ reason, code }, 'chorus rtc: session ended');
    this.ctx.ended(this);
  }

  private use(socket: WebSocket): void {
    this.socket = socket;
    // A network that vanished leaves the TCP socket half open: no close until a ping
    // goes unanswered.
    const liveness = this.ctx.heartbeats.watch(
      {
        beat: () => socket.ping(),
        expire: () => socket.terminate(),
      },
      { beatMs: PING_EVERY_MS, answerRequired: true },
    );
    socket.on('pong', () => liveness.heard());
    socket.on('message', (data, isBinary) => {
      liveness.heard();
      if (isBinary) {
        this.refuse('binary frames are not part of the protocol');
        return;
      }
      const text = (data as Buffer).toString('utf8');
      // A handler that throws is logged; it never reaches the socket or the process.
      this.ready
        .then(() => this.onText(text))
        .catch((err: unknown) => this.log.error({ err }, 'chorus rtc: message handler threw'));
    });
    socket.on('close', () => {
      liveness.stop();
      if (this.socket !== socket || this.endedFlag) return;
      this.awaitResume();
    });
  }

  private awaitResume(): void {
    this.socket = undefined;
    this.log.info('chorus rtc: socket dropped, waiting for a resume');
    clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(
      () => this.end('disconnected (no resume in time)', RTC_CLOSE.normal),
      this.ctx.resumeGraceMs,
    );
  }

  private async join(resumeFailed: boolean): Promise<void> {
    const record = await this.ctx.nativeRooms.get(this.roomName);
    const max = record?.maxParticipants ?? 0;
    if (max > 0) {
      const inRoom = await this.ctx.nativeRooms.participants(this.roomName);
      if (inRoom.filter((p) => p.identity !== this.identity).length >= max)
        throw new ChorusError('capacity', `room ${this.roomName} is full (${max})`);
    }
    if (this.endedFlag) return;
    this.watchParticipant(this.room.join(asParticipantId(this.identity)));
    await this.sendJoin(resumeFailed);
  }

  private watchParticipant(p: Participant): void {
    this.participant = p;
    p.subscribe(SIGNALLING_SOURCE);
    p.events.on('left', ({ reason }) => {
      // Removed by the room service, the room deleted, the identity joining elsewhere.
      if (!this.endedFlag) this.end(reason, rtcCloseFor(reason));
    });
  }

  private async sendJoin(resumeFailed: boolean): Promise<void> {
    const record = await this.ctx.nativeRooms.get(this.roomName);
    const everyone = await this.ctx.nativeRooms.participants(this.roomName);
    if (this.endedFlag) return;
    const { grants } = this.claims;
    const self = everyone.find((p) => p.identity === this.identity);
    this.send({
      type: 'join',
      protocol: 1,
      room: {
        name: this.roomName,
        metadata: record?.metadata ?? '',
        createdAt: record?.createdAt ?? 0,
        maxParticipants: record?.maxParticipants ?? 0,
      },
      participant: self ?? {
        identity: this.identity,
        name: this.claims.name ?? '',
        metadata: this.claims.metadata ?? '',
        node: '',
        tracks: [],
      },
      others: everyone.filter((p) => p.identity !== this.identity),
      permissions: {
        canPublish: grants.canPublish === true,
        canSubscribe: grants.canSubscribe === true,
        canPublishData: grants.canPublishData === true,
        canPublishSources: grants.canPublishSources ?? ['camera', 'microphone', 'screen'],
      },
      autoSubscribe: grants.canSubscribe === true,
      resumeToken: this.resumeToken,
      resumeGraceSeconds: Math.round(this.ctx.resumeGraceMs / 1000),
      resumeFailed,
      trickle: true,
    });
    const pending = this.pending ?? [];
    this.pending = undefined;
    for (const e of pending) this.onFeed(e);
  }

  private onHeard(e: RoomFeedEvent, heard: string): void {
    this.heard.push(heard);
    if (this.heard.length > HEARD_KEPT) this.heard.shift();
    this.onFeed(e);
  }

  private onFeed(e: RoomFeedEvent): void {
    if (this.endedFlag) return;
    if (this.pending) {
      this.pending.push(e);
      return;
    }
    switch (e.type) {
      case 'participantJoined':
        if (e.participant.identity !== this.identity) this.send(e);
        return;
      case 'participantLeft':
        if (e.identity !== this.identity) this.send(e);
        return;
      case 'trackPublished':
      case 'trackUnpublished':
      case 'trackMuted':
        this.send(e);
        return;
      case 'speakers': {
        if (e.speakers.length === 0) this.speakersByNode.delete(e.node);
        else this.speakersByNode.set(e.node, e.speakers);
        const all = [...this.speakersByNode.values()].flat().sort((x, y) => y.level - x.level);
        // A node says its speakers again when someone joins: news only to the joiner.
        const said = JSON.stringify(all);
        if (said === this.speakersSaid) return;
        this.speakersSaid = said;
        this.send({ type: 'speakers', speakers: all });
        return;
      }
      case 'data':
        if (e.from === this.identity) return;
        if (e.to && e.to.length > 0 && !e.to.includes(this.identity)) return;
        this.send({
          type: 'data',
          payload: e.payload,
          ...(e.from === undefined ? {} : { from: e.from }),
          ...(e.topic === undefined ? {} : { topic: e.topic }),
        });
        return;
    }
  }

  private onText(text: string): void {
    if (this.endedFlag) return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.refuse('malformed JSON', text);
      return;
    }
    const parsed = clientMessage.safeParse(raw);
    if (!parsed.success) {
      const type = (raw as { type?: unknown } | null)?.type;
      const known =
        typeof type === 'string' && clientMessage.options.some((o) => o.shape.type.value === type);
      const requestId = (raw as { requestId?: unknown } | null)?.requestId;
      const issue = parsed.error.issues[0];
      const message = `invalid ${known ? String(type) : 'message'}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`;
      // A known request with a bad field is answered; anything else is not this protocol.
      if (known)
        this.sendError(
          typeof requestId === 'string' ? requestId.slice(0, 64) : undefined,
          new ChorusError('invalid_argument', message),
        );
      else this.refuse(message, text);
      return;
    }
    const msg = parsed.data;
    const trickle = msg.type === 'trickle';
    if (!(trickle ? this.trickleRate : this.rate).take()) {
      const perSecond = trickle ? TRICKLES_PER_SECOND : MESSAGES_PER_SECOND;
      this.sendError(
        msg.requestId,
        new ChorusError('rate_limited', `more than ${perSecond} ${msg.type} messages a second: dropped`),
      );
      return;
    }
    this.handle(msg).catch((err: unknown) => {
      if (!isChorusError(err) || err.code === 'internal')
        this.log.error({ err, type: msg.type }, 'chorus rtc: request failed');
      this.sendError(msg.requestId, err);
    });
  }

  private async handle(msg: ClientMessage): Promise<void> {
    const { grants } = this.claims;
    const rid = msg.requestId === undefined ? {} : { requestId: msg.requestId };
    const user = asUserId(this.identity);
    switch (msg.type) {
      case 'publish': {
        if (grants.canPublish !== true) throw forbidden('canPublish');
        const sources = publishSources(msg.sdp, msg.sources ?? {}, grants.canPublishSources);
        // Each named peer connection is its own leg; the main one keeps the old keys and ids.
        const pc = msg.pc === undefined || msg.pc === MAIN_PC ? undefined : msg.pc;
        const trickled = this.trickle.negotiating({ pc: pc ?? MAIN_PC });
        const sdp = await this.ctx.sfu.publish(this.room, user, msg.sdp, sources, pc).finally(trickled);
        const trackIds: Record<string, string> = {};
        for (const kind of ['audio', 'video'] as const)
          if (sources[kind]) trackIds[kind] = publishedTrackId(this.identity, kind, pc);
        this.send({ type: 'published', ...rid, sdp, trackIds });
        return;
      }
      case 'unpublish':
        // Without `pc`: every peer connection's tracks (the protocol before there were several).
        if (msg.pc !== undefined)
          this.ctx.sfu.unpublish(this.room, user, msg.pc === MAIN_PC ? undefined : msg.pc);
        else for (const t of [...(this.participant?.tracks.values() ?? [])]) t.close('unpublished');
        this.send({ type: 'ok', ...rid, for: 'unpublish' });
        return;
      case 'subscribe': {
        if (grants.canSubscribe !== true) throw forbidden('canSubscribe');
        if (msg.identity === this.identity)
          throw new ChorusError('invalid_argument', 'cannot subscribe to yourself');
        const trickled = this.trickle.negotiating({ subscription: msg.identity });
        const sdp = await this.ctx.sfu
          .subscribe(this.room, user, asUserId(msg.identity), msg.sdp, msg.trackIds)
          .finally(trickled);
        this.send({ type: 'subscribed', ...rid, identity: msg.identity, sdp });
        return;
      }
      case 'unsubscribe':
        this.participant?.unsubscribe(msg.identity, 'unsubscribed');
        this.send({ type: 'ok', ...rid, for: 'unsubscribe' });
        return;
      case 'mute': {
        const track = this.participant?.tracks.get(msg.trackId);
        if (!track) throw new ChorusError('not_found', `you publish no track ${msg.trackId}`);
        if (!msg.muted && track.mutedByServer)
          throw new ChorusError(
            'forbidden',
            'the track was muted by the room service: only it can unmute it',
          );
        track.setMuted(msg.muted, false);
        this.send({ type: 'ok', ...rid, for: 'mute' });
        return;
      }
      case 'data':
        if (grants.canPublishData !== true) throw forbidden('canPublishData');
        this.ctx.feed.publish(this.roomName, {
          type: 'data',
          from: this.identity,
          payload: msg.payload,
          ...(msg.topic === undefined ? {} : { topic: msg.topic }),
          ...(msg.to === undefined ? {} : { to: msg.to }),
        });
        this.send({ type: 'ok', ...rid, for: 'data' });
        return;
      case 'trickle':
        this.trickle.add(trickleTarget(msg), trickled(msg));
        if (msg.requestId !== undefined) this.send({ type: 'ok', ...rid, for: 'trickle' });
        return;
      case 'trackSettings':
        if (grants.canSubscribe !== true) throw forbidden('canSubscribe');
        applyTrackSettings(this.ctx.sfu, this.room, this.identity, msg);
        this.send({ type: 'ok', ...rid, for: 'trackSettings' });
        return;
      case 'ping':
        this.send({ type: 'pong', ...rid, timestamp: msg.timestamp, serverTime: Date.now() });
        return;
      case 'leave':
        this.end('left', RTC_CLOSE.normal);
        return;
    }
  }

  /** A frame that is not this protocol: said, logged (throttled), and the socket closed. */
  private refuse(message: string, text?: string): void {
    this.ctx.clientErrors.warn(
      {
        room: this.roomName,
        user: this.identity,
        text: text === undefined ? undefined : clipClientText(text),
      },
      `chorus rtc: ${message}, socket closed`,
    );
    const socket = this.socket;
    if (!socket) return;
    this.send({ type: 'error', code: 'invalid_message', message }, socket);
    // Only this socket: the session waits for a resume as after any drop.
    socket.close(RTC_CLOSE.invalidMessage, closeReason(message));
  }

  private sendError(requestId: string | undefined, err: unknown): void {
    const code = isChorusError(err) ? rtcErrorCode(err.code) : 'internal';
    const message = code === 'internal' ? 'internal error' : (err as Error).message;
    this.send({ type: 'error', ...(requestId === undefined ? {} : { requestId }), code, message });
  }

  /** Numbers, keeps and sends (when a socket is there) one message. */
  private send(msg: Outgoing, socket = this.socket): void {
    const text = this.sent.append(msg);
    if (socket && socket.readyState === socket.OPEN) socket.send(text);
  }
}

/** A close frame's reason: at most 123 bytes of UTF-8, cut between characters. */
function closeReason(text: string): string {
  let out = text;
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return out;
}

/** The leg a `trickle` names: exactly one of `pc` and `subscription` (neither: the main PC). */
function trickleTarget(msg: { pc?: string | undefined; subscription?: string | undefined }): TrickleTarget {
  if (msg.pc !== undefined && msg.subscription !== undefined)
    throw new ChorusError('invalid_argument', 'invalid trickle: name a pc or a subscription, not both');
  return msg.subscription === undefined ? { pc: msg.pc ?? MAIN_PC } : { subscription: msg.subscription };
}

/** A `trickle`'s candidate or end-of-candidates: exactly one of `candidate` and `end`. */
function trickled(msg: {
  candidate?: string | undefined;
  sdpMid?: string | undefined;
  end?: true | undefined;
}): Trickled {
  if ((msg.candidate === undefined) === (msg.end === undefined))
    throw new ChorusError('invalid_argument', 'invalid trickle: a candidate, or end: true');
  return msg.candidate === undefined ? { end: true } : { candidate: msg.candidate, sdpMid: msg.sdpMid };
}

const forbidden = (grant: string): ChorusError =>
  new ChorusError('forbidden', `token lacks the ${grant} grant`, { grant });
