import { Backoff, type BackoffOptions } from './backoff.js';
import { decodeData, encodeData } from './data-payload.js';
import { ChorusError } from './errors.js';
import { LocalParticipant } from './local-participant.js';
import { ParticipantSubscription } from './participant-subscription.js';
import {
  CloseCodes,
  type ClientMessage,
  type JoinResponse,
  type ParticipantInfo,
  type Permissions,
  type RoomInfo,
  type ServerMessage,
} from './protocol.js';
import type { VideoSettings } from './adaptive-video.js';
import { RemoteParticipant } from './remote-participant.js';
import type {
  ActiveSpeaker,
  ConnectionState,
  DisconnectReason,
  RoomEvents,
  SpeakerSource,
} from './room-events.js';
import { RoomSpeakers } from './room-speakers.js';
import { SignalConnection } from './signal-connection.js';
import { TypedEmitter } from './typed-emitter.js';
import type { TrickleSend } from './trickle.js';

export interface RoomOptions {
  /** Subscribe to everyone's tracks as they appear (default: what the server's `join` says, normally true). */
  autoSubscribe?: boolean;
  /** For every RTCPeerConnection (say TURN servers); default none: the server's candidates suffice on most networks. */
  rtcConfig?: RTCConfiguration;
  /**
   * Trickle ICE (default true): offers go before ICE gathering completes and candidates
   * follow, when the server takes them (`join.trickle`); false waits for every candidate.
   */
  trickleIce?: boolean;
  /** How long a connection attempt may take (default 10 s). */
  connectTimeoutMs?: number;
  /** Ping period (default 10 s); a socket silent for `silenceMs` (default 25 s) counts as dropped. */
  pingMs?: number;
  silenceMs?: number;
  /** Give up reconnecting after this long (default 60 s, at least the server's resume grace). */
  reconnectTimeoutMs?: number;
  /** Delays between reconnect attempts (default 300 ms doubling to 8 s, ±25 %). */
  backoff?: BackoffOptions;
  /** Measure audio levels here for `activeSpeakers` until the server sends `speakers` (default true). */
  clientSpeakerDetection?: boolean;
  /**
   * A fresh access token for each reconnect attempt (say from your token server): the
   * server checks the token on a resume too, so without it a session outliving its
   * token cannot come back after a drop. A failure falls back to the last token.
   */
  refreshToken?: () => Promise<string>;
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSES: ReadonlyMap<number, DisconnectReason['code']> = new Map([
  [CloseCodes.normal, 'serverLeave'],
  [CloseCodes.invalidMessage, 'serverLeave'],
  [CloseCodes.removed, 'removed'],
  [CloseCodes.duplicateIdentity, 'duplicateIdentity'],
  [CloseCodes.roomClosed, 'roomClosed'],
]);
const TICK_MS = 500;

/**
 * A room joined with an access token over Chorus's native signalling. `Room.connect`
 * resolves once joined; then `localParticipant` publishes, remote tracks arrive through
 * `trackSubscribed`, and a dropped connection is resumed (the same session, within the
 * server's grace), else rejoined, without the application doing anything.
 */
export class Room extends TypedEmitter<RoomEvents> {
  /** Everyone else in the room, by identity. */
  readonly participants = new Map<string, RemoteParticipant>();
  readonly localParticipant: LocalParticipant;
  #info: RoomInfo;
  #permissions: Permissions;
  #state: ConnectionState = 'connected';
  #conn: SignalConnection | undefined;
  #resumeToken: string;
  #resumeGraceMs: number;
  #lastSeq = 0;
  #autoSubscribe: boolean;
  readonly #subs = new Map<string, ParticipantSubscription>();
  readonly #speakers: RoomSpeakers;
  /** Set by the server's `leave` message, read when the socket closes right after. */
  #serverLeave: { reason: string; canReconnect: boolean } | undefined;
  readonly #ticker: ReturnType<typeof setInterval>;
  /** The server takes trickled candidates (its last `join` said so). */
  #trickle = false;

  private constructor(
    private readonly url: string,
    private token: string,
    private readonly options: RoomOptions,
    join: JoinResponse,
  ) {
    super();
    this.#info = join.room;
    this.#permissions = join.permissions;
    this.#resumeToken = join.resumeToken;
    this.#resumeGraceMs = join.resumeGraceSeconds * 1000;
    this.#trickle = join.trickle === true;
    this.#autoSubscribe = options.autoSubscribe ?? join.autoSubscribe;
    this.localParticipant = new LocalParticipant({
      identity: join.participant.identity,
      rtcConfig: options.rtcConfig,
      connected: () => this.#state === 'connected',
      request: (msg) => this.#request(msg),
      trickle: (target) => this.#trickleTo(target),
      published: (pub) => this.emit('localTrackPublished', pub),
      unpublished: (pub) => this.emit('localTrackUnpublished', pub),
      muteChanged: (pub) => this.emit(pub.muted ? 'trackMuted' : 'trackUnmuted', pub, this.localParticipant),
      failed: (err) => this.#failed(err),
    });
    this.#speakers = new RoomSpeakers(options.clientSpeakerDetection ?? true, (s) =>
      this.emit('activeSpeakers', s),
    );
    this.#ticker = setInterval(() => this.#tick(), TICK_MS);
  }

  /**
   * Joins the room that `token` names on the Chorus at `url` (`https://host`, or the
   * page's own origin with `location.origin`). Rejects when the server refuses (a bad
   * or expired token shows as a failed connection in browsers) or does not answer.
   */
  static async connect(url: string, token: string, options: RoomOptions = {}): Promise<Room> {
    const { connection, first } = await SignalConnection.open({ url, token }, Room.#socketOptions(options));
    if (first.type !== 'join') {
      connection.close(1000);
      throw new ChorusError('failed', `the server's first message was '${first.type}', not 'join'`);
    }
    const room = new Room(url, token, options, first);
    room.#attach(connection, first, false, true);
    return room;
  }

  get name(): string {
    return this.#info.name;
  }
  get metadata(): string {
    return this.#info.metadata;
  }
  get permissions(): Permissions {
    return this.#permissions;
  }
  get state(): ConnectionState {
    return this.#state;
  }
  /** Where `activeSpeakers` comes from now. */
  get speakerSource(): SpeakerSource {
    return this.#speakers.source;
  }

  /**
   * Sends data (text, or bytes: base64 on the wire) to everyone else, or to `to`
   * identities; resolves when the server accepted it. Needs the `canPublishData` grant.
   */
  async sendData(data: string | Uint8Array, options: { to?: string[]; topic?: string } = {}): Promise<void> {
    const { payload, topic } = encodeData(data, options.topic);
    await this.#request({
      type: 'data',
      payload,
      ...(options.to ? { to: options.to } : {}),
      ...(topic === undefined ? {} : { topic }),
    });
  }

  /** Receives `identity`'s tracks (automatic unless `autoSubscribe` is off). */
  subscribe(identity: string): void {
    const p = this.participants.get(identity);
    if (!p) throw new ChorusError('not_found', `no participant '${identity}' in the room`);
    this.#subscription(p).sync();
  }

  /** Stops receiving `identity`'s tracks. */
  unsubscribe(identity: string): void {
    this.#subs.get(identity)?.close(true);
    this.#subs.delete(identity);
  }

  /** Leaves the room for good (no resume). */
  disconnect(): void {
    if (this.#state === 'disconnected') return;
    this.#conn?.send({ type: 'leave' });
    this.#end({ code: 'left', message: 'left the room' });
  }

  static #socketOptions(o: RoomOptions): { timeoutMs: number; pingMs: number; silenceMs: number } {
    return {
      timeoutMs: o.connectTimeoutMs ?? 10_000,
      pingMs: o.pingMs ?? 10_000,
      silenceMs: o.silenceMs ?? 25_000,
    };
  }

  /** How a leg trickles its candidates, or undefined (complete offers) when the server takes none. */
  #trickleTo(target: { pc: string } | { subscription: string }): TrickleSend {
    if (!this.#trickle || this.options.trickleIce === false) return undefined;
    // A refused candidate (its leg replaced meanwhile) changes nothing: the offer stands.
    return (item) => void this.#request({ type: 'trickle', ...target, ...item }).catch(() => undefined);
  }

  #request(msg: ClientMessage): Promise<ServerMessage> {
    if (!this.#conn || this.#state !== 'connected')
      return Promise.reject(new ChorusError('closed', `not connected: '${msg.type}' not sent`));
    return this.#conn.request(msg);
  }

  /**
   * Makes `conn` the session; a `join` is applied before the messages that follow it
   * (`keepLegs`: the session went on, so the media legs did too).
   */
  #attach(conn: SignalConnection, join?: JoinResponse, keepLegs = false, initial = false): void {
    this.#conn = conn;
    this.#serverLeave = undefined;
    conn.onClose = (code, reason) => {
      if (this.#conn === conn) this.#dropped(code, reason);
    };
    if (join) this.#applyJoin(join, initial, keepLegs);
    conn.listen((msg) => {
      try {
        this.#handle(msg);
      } catch (err) {
        this.#failed(err);
      }
    });
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('connectionStateChanged', state);
  }

  #handle(msg: ServerMessage): void {
    // `resumed` precedes the replayed messages, which keep their original (lower) seq.
    if (msg.type === 'resumed') return;
    if (msg.type !== 'join' && msg.seq <= this.#lastSeq) return; // replayed twice
    this.#lastSeq = msg.seq;
    switch (msg.type) {
      case 'join':
        this.#applyJoin(msg, false, !msg.resumeFailed);
        return;
      case 'published':
      case 'subscribed':
      case 'ok':
      case 'pong':
        return; // replies: their requests resolve in SignalConnection
      case 'error':
        if (msg.requestId === undefined) this.emit('error', new ChorusError(msg.code, msg.message));
        return;
      case 'participantJoined':
        this.#upsertParticipant(msg.participant, true);
        return;
      case 'participantLeft':
        this.#removeParticipant(msg.identity, msg.reason);
        return;
      case 'trackPublished': {
        if (msg.identity === this.localParticipant.identity) {
          this.localParticipant.trackTookEffect(msg.track);
          return;
        }
        const p = this.participants.get(msg.identity);
        if (!p) return; // its participantJoined carries the track
        const { publication, added } = p.upsertTrack(msg.track);
        if (added) this.emit('trackPublished', publication, p);
        this.#syncSubscription(p);
        return;
      }
      case 'trackUnpublished':
        this.#removeTrack(msg.identity, msg.trackId);
        return;
      case 'trackMuted':
        this.#trackMuted(msg.identity, msg.trackId, msg.muted);
        return;
      case 'speakers':
        this.#speakers.fromServer(msg.speakers);
        return;
      case 'data': {
        const { data, topic } = decodeData(msg.payload, msg.topic);
        const from = msg.from === undefined ? undefined : this.participants.get(msg.from);
        this.emit('dataReceived', data, from, topic);
        return;
      }
      case 'layersWanted':
        this.localParticipant.layersWanted(msg.trackId, msg.layers);
        return;
      case 'leave':
        this.#serverLeave = { reason: msg.reason, canReconnect: msg.canReconnect };
        return;
    }
  }

  /**
   * The room's state as the server has it: the first join; after a resume whose missed
   * messages were no longer kept (`keepLegs`: the session and its media legs went on);
   * or a new session after a resume that failed (every leg negotiated afresh).
   */
  #applyJoin(join: JoinResponse, initial: boolean, keepLegs: boolean): void {
    this.#info = join.room;
    this.#permissions = join.permissions;
    this.#resumeToken = join.resumeToken;
    this.#resumeGraceMs = join.resumeGraceSeconds * 1000;
    this.#trickle = join.trickle === true;
    this.#lastSeq = join.seq;
    const present = new Set(join.others.map((o) => o.identity));
    for (const identity of [...this.participants.keys()])
      if (!present.has(identity)) this.#removeParticipant(identity, 'gone while reconnecting');
    if (!keepLegs) {
      for (const s of this.#subs.values()) s.close(false);
      this.#subs.clear();
    }
    for (const info of join.others) this.#upsertParticipant(info, !initial);
  }

  #upsertParticipant(info: ParticipantInfo, announce: boolean): void {
    if (info.identity === this.localParticipant?.identity) return;
    let p = this.participants.get(info.identity);
    if (!p) {
      const identity = info.identity;
      p = new RemoteParticipant(info, (trackId, v) => this.#trackSettings(identity, trackId, v));
      this.participants.set(info.identity, p);
      if (announce) {
        this.emit('participantJoined', p);
        for (const pub of p.tracks.values()) this.emit('trackPublished', pub, p);
      }
    } else {
      p.updateInfo(info);
      const ids = new Set(info.tracks.map((t) => t.id));
      for (const id of [...p.tracks.keys()]) if (!ids.has(id)) this.#removeTrack(p.identity, id);
      for (const t of info.tracks) {
        const { publication, added } = p.upsertTrack(t);
        if (added) this.emit('trackPublished', publication, p);
      }
    }
    this.#syncSubscription(p);
  }

  #removeParticipant(identity: string, reason: string): void {
    const p = this.participants.get(identity);
    if (!p) return;
    this.#subs.get(identity)?.close(false);
    this.#subs.delete(identity);
    for (const pub of p.tracks.values()) {
      pub.close();
      this.emit('trackUnpublished', pub, p);
    }
    this.participants.delete(identity);
    this.emit('participantLeft', p, reason);
  }

  #removeTrack(identity: string, trackId: string): void {
    const p = this.participants.get(identity);
    const pub = p?.tracks.get(trackId);
    if (!p || !pub) return;
    p.tracks.delete(trackId);
    pub.close();
    const track = pub.track;
    if (track) {
      pub.setTrack(undefined);
      this.emit('trackUnsubscribed', track, pub, p);
    }
    this.emit('trackUnpublished', pub, p);
    this.#syncSubscription(p);
  }

  #trackMuted(identity: string, trackId: string, muted: boolean): void {
    if (identity === this.localParticipant.identity) {
      this.localParticipant.mutedByServer(trackId, muted);
      return;
    }
    const p = this.participants.get(identity);
    const pub = p?.tracks.get(trackId);
    if (!p || !pub || pub.muted === muted) return;
    pub.setMuted(muted);
    this.emit(muted ? 'trackMuted' : 'trackUnmuted', pub, p);
  }

  #subscription(p: RemoteParticipant): ParticipantSubscription {
    let s = this.#subs.get(p.identity);
    if (!s) {
      s = new ParticipantSubscription(p, {
        rtcConfig: this.options.rtcConfig,
        connected: () => this.#state === 'connected',
        request: (msg) => this.#request(msg),
        trickle: (target) => this.#trickleTo(target),
        subscribed: (track, pub, who) => this.emit('trackSubscribed', track, pub, who),
        unsubscribed: (track, pub, who) => this.emit('trackUnsubscribed', track, pub, who),
        failed: (err) => this.#failed(err),
      });
      this.#subs.set(p.identity, s);
    }
    return s;
  }

  #syncSubscription(p: RemoteParticipant): void {
    const existing = this.#subs.get(p.identity);
    if (existing) existing.sync();
    else if (this.#autoSubscribe && this.#permissions.canSubscribe && p.tracks.size > 0)
      this.#subscription(p).sync();
  }

  /** Adaptive stream: how one received video is shown (errors ignored: the next leg says it again). */
  #trackSettings(identity: string, trackId: string, v: VideoSettings): boolean {
    if (this.#state !== 'connected') return false;
    this.#request({
      type: 'trackSettings',
      identity,
      trackId,
      width: v.width,
      height: v.height,
      active: v.active,
    }).catch(() => undefined);
    return true;
  }

  #tick(): void {
    if (this.#state !== 'connected') return;
    const now = Date.now();
    this.localParticipant.watch(now);
    for (const s of this.#subs.values()) s.watch(now);
    if (this.listenerCount('activeSpeakers') > 0)
      this.#speakers.sample(this.localParticipant, [...this.#subs.values()]);
  }

  #failed(err: unknown): void {
    this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  /** The socket closed: the end, or a drop to recover from. */
  #dropped(code: number, reason: string): void {
    this.#conn = undefined;
    if (this.#state === 'disconnected') return;
    const leave = this.#serverLeave;
    const final = FINAL_CLOSES.get(code);
    if (final || (leave && !leave.canReconnect)) {
      this.#end({
        code: final ?? 'serverLeave',
        message: leave?.reason ?? (reason || `closed with ${code}`),
      });
      return;
    }
    void this.#reconnect();
  }

  /** Resume within the server's grace, then full rejoins, with backoff, until reconnectTimeoutMs. */
  async #reconnect(): Promise<void> {
    this.#setState('reconnecting');
    this.emit('reconnecting');
    const started = Date.now();
    const resumeUntil = started + this.#resumeGraceMs - 1000;
    const giveUpAt = started + Math.max(this.options.reconnectTimeoutMs ?? 60_000, this.#resumeGraceMs);
    const backoff = new Backoff(this.options.backoff);
    while (this.#state === 'reconnecting') {
      if (Date.now() > giveUpAt) {
        this.#end({
          code: 'reconnectFailed',
          message: `could not reconnect within ${giveUpAt - started} ms`,
        });
        return;
      }
      await new Promise((r) => setTimeout(r, backoff.next()));
      if (this.#state !== 'reconnecting') return;
      const resume =
        Date.now() < resumeUntil ? { token: this.#resumeToken, lastSeq: this.#lastSeq } : undefined;
      let opened;
      try {
        if (this.options.refreshToken) this.token = await this.#freshToken(this.options.refreshToken);
        opened = await SignalConnection.open(
          { url: this.url, token: this.token, ...(resume ? { resume } : {}) },
          Room.#socketOptions(this.options),
        );
      } catch {
        continue; // not reachable yet
      }
      if (this.#state !== 'reconnecting') {
        opened.connection.close(1000);
        return;
      }
      const { connection, first } = opened;
      if (first.type !== 'join' && first.type !== 'resumed') {
        connection.close(1000);
        continue;
      }
      // The same session: `resumed` (missed messages follow), or a `join` with the whole
      // state when the missed ones were no longer kept. Else a new session (resumeFailed,
      // or the grace was over and no resume was asked): everything is published and
      // subscribed again.
      const resumed = first.type === 'resumed' || (resume !== undefined && !first.resumeFailed);
      // Resumed on another node: the session went on there, its media legs did not.
      const mediaReset = first.type === 'resumed' && first.mediaReset === true;
      this.#setState('connected');
      this.#attach(connection, first.type === 'join' ? first : undefined, resumed);
      this.localParticipant.resume(!resumed || mediaReset);
      if (resumed) for (const s of this.#subs.values()) if (mediaReset || s.broken) s.sync(true);
      this.emit('reconnected', resumed);
      return;
    }
  }

  async #freshToken(refresh: () => Promise<string>): Promise<string> {
    try {
      const token = await refresh();
      return typeof token === 'string' && token !== '' ? token : this.token;
    } catch (err) {
      this.#failed(err);
      return this.token;
    }
  }

  #end(reason: DisconnectReason): void {
    if (this.#state === 'disconnected') return;
    this.#setState('disconnected');
    clearInterval(this.#ticker);
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.close(1000, reason.code);
    for (const s of this.#subs.values()) s.close(false);
    this.#subs.clear();
    this.localParticipant.close();
    this.emit('disconnected', reason);
  }
}

export type { ActiveSpeaker };
