import { summarizeReception, trackStats, type ReceptionSummary, type TrackStats } from './track-stats.js';
import type { Logger } from 'pino';
import { ChorusError, isChorusError } from '../../core/errors.js';
import type { UserId } from '../../core/ids.js';
import type { Room } from '../../core/room.js';
import { asParticipantId, type TrackSource } from '../../core/room-types.js';
import type { WebRtcSettings } from './peer-config.js';
import { PublisherPeer } from './publisher-peer.js';
import { VoicePeer } from './voice-peer.js';
import { SubscriberPeer } from './subscriber-peer.js';
import { PaddingSender } from './padding-sender.js';
import type { PublishedTrack } from './published-track.js';
import type { PeerLeg } from './peer-leg.js';
import type { CodecChoice } from './codec-policy.js';
import { SfuRelay, type SfuRelayStats } from '../relay/sfu-relay.js';
import type { RemotePublisher } from '../relay/remote-publisher.js';
import type { Ports } from '../../ports/ports.js';
import { LayersWantedEvents } from './layers-wanted.js';
import { ActiveSpeakers, type RoomAudio } from './active-speakers.js';

export interface SfuStats extends SfuRelayStats {
  peers: number;
  publishers: number;
  subscribers: number;
  /** Voice peers (server-mixed conversations). */
  voices: number;
  publishedTracks: number;
  forwardTargets: number;
  packetsIn: number;
  packetsOut: number;
  keyframeRequests: number;
  /** Forwarding sends the binding refused (counted, not fatal). */
  sendErrors: number;
  /** Packets resent on a subscriber's NACK. */
  retransmissions: number;
  /** Sequence numbers NACKed to publishers (each try), and packets their RTX repaired. */
  nacksSent: number;
  rtxRepaired: number;
  /** New peers refused: the peer limit, or an overloaded process. */
  refused: number;
  /** What subscribers' receivers report (loss, over every leg). */
  reception: ReceptionSummary;
  /** Bandwidth probing (#18): padding sent, and probes started, succeeded, failed. */
  paddingBytes: number;
  paddingPackets: number;
  probesStarted: number;
  probesSucceeded: number;
  probesFailed: number;
  /** Legs being padded now. */
  paddingLegs: number;
}

/** What a track sends to other nodes (its own node) or came from (a relayed one). */
export interface TrackRelayStats {
  /** Local track: packets published for other nodes; relayed track: packets received here. */
  packets: number;
  /** Local track: nodes receiving it now. */
  nodes?: number;
  /** Relayed track: the node that carries its publisher. */
  from?: string;
}

/** A room's publishers, their tracks and how each subscriber receives them. */
export interface RoomMediaStats {
  publishers: Array<{ user: string; node?: string; tracks: Array<TrackStats & { relay?: TrackRelayStats }> }>;
}

/** Seconds a client refused as `overloaded` is told to wait (`Retry-After`). */
export const OVERLOADED_RETRY_AFTER_SECONDS = 5;

/**
 * A failed negotiation as a coded error: the offer's faults are already coded
 * (`invalid_sdp`); anything else failed inside libdatachannel, the server's own failure.
 */
function negotiationFailure(err: unknown): ChorusError {
  if (isChorusError(err)) return err;
  return new ChorusError('internal', (err as Error).message, { reason: 'negotiation_failed' });
}

/** A peer that has not connected (ICE + DTLS) within this long is given up. */
const CONNECT_TIMEOUT_MS = 20_000;

const key = (room: string, user: string): string => `${room}\u0000${user}`;
/**
 * A publisher leg's key: the participant's main peer connection is keyed by (room, user)
 * as before; another one it publishes on at the same time (a screen share next to the
 * camera) gets `pc` appended, so each leg is its own while the room sees one participant.
 */
const legKey = (room: string, user: string, pc: string | undefined): string =>
  pc === undefined ? key(room, user) : `${key(room, user)}\u0000${pc}`;

/** The room track id of a leg's track: `<user>-audio|video` on the main leg, `<user>-<pc>[-audio]` on others. */
export function publishedTrackId(user: string, kind: 'audio' | 'video', pc?: string): string {
  if (pc === undefined) return `${user}-${kind}`;
  return kind === 'video' ? `${user}-${pc}` : `${user}-${pc}-audio`;
}

const NO_RELAY: SfuRelayStats = {
  relayPacketsSent: 0,
  relayMessagesSent: 0,
  relayPacketsReceived: 0,
  relayedOut: 0,
  relayedIn: 0,
  relayDropped: 0,
};

/**
 * The selective forwarding unit: publishers send into it, subscribers receive one
 * publisher's tracks each. It keeps the room's participants and tracks up to date and
 * follows the room's closing cascade: a track that ends (its participant left, the room
 * closed) stops the leg that carries it, a dropped subscription stops its leg; and a
 * publisher that leaves ends its subscribers' legs.
 */
export class Sfu {
  private readonly publishers = new Map<string, PublisherPeer>();
  /** Relay ids of each local publisher's announced tracks. */
  private readonly relayIds = new Map<PublisherPeer, string[]>();
  /** Publishers on other nodes received here whose counters are retired when they end. */
  private readonly relayedWatched = new WeakSet<RemotePublisher>();
  /** Publishers on other nodes, through the ports; absent: this SFU stays on its node. */
  private readonly relay: SfuRelay | undefined;
  private readonly subscribersOf = new Map<string, Set<SubscriberPeer>>();
  private readonly subscriptions = new Map<string, SubscriberPeer>();
  /** Probe padding for every subscriber leg of this SFU (one timer, one cap). */
  private readonly padding: PaddingSender;
  /** The room track id of each local published track (a subscriber may order sections by it). */
  private readonly trackIds = new WeakMap<PublishedTrack, string>();
  private retired = {
    packetsIn: 0,
    packetsOut: 0,
    keyframeRequests: 0,
    sendErrors: 0,
    retransmissions: 0,
    nacksSent: 0,
    rtxRepaired: 0,
  };
  /** Voice peers (conversations mixed by the server), watched like the others. */
  private readonly voices = new Set<VoicePeer>();
  private readonly watchdog: NodeJS.Timeout;
  private readonly sweepEveryMs: number;
  private refused = 0;
  /** Which simulcast layers each track's subscribers receive (docs/sfu.md, "Simulcast"). */
  readonly layersWanted: LayersWantedEvents;
  private lastSweep = Date.now();
  /** Who speaks in each room, from the audio level of this node's publishers (#18). */
  readonly speakers: ActiveSpeakers;

  constructor(
    private readonly settings: WebRtcSettings,
    private readonly log: Logger,
    ports?: Pick<Ports, 'bus' | 'store' | 'membership'>,
  ) {
    this.layersWanted = new LayersWantedEvents(log);
    this.padding = new PaddingSender(log.child({ component: 'probe-padding' }));
    this.relay =
      ports &&
      new SfuRelay(
        ports.bus,
        ports.store,
        ports.membership,
        { keyframeIntervalMs: settings.keyframeIntervalMs, nackHistoryPackets: settings.nackHistoryPackets },
        log.child({ component: 'sfu-relay' }),
      );
    // Browsers send RTCP every second or so; a leg silent past the timeout is gone even
    // if ICE has not noticed yet (a killed tab, a lost network).
    this.sweepEveryMs = Math.min(1000, settings.peerTimeoutMs / 2);
    this.watchdog = setInterval(() => this.sweep(), this.sweepEveryMs);
    this.watchdog.unref();
    this.speakers = new ActiveSpeakers(() => this.roomAudio(), log.child({ component: 'active-speakers' }));
  }

  /**
   * The audio tracks with levels of this node's publishers, by room. Only local ones: a
   * relayed track is detected on its publisher's node, and the native signalling merges
   * the nodes' speakers (rtc-session.ts), so counting it here too would list it twice.
   */
  private roomAudio(): Map<string, RoomAudio> {
    const rooms = new Map<string, Array<[string, PublishedTrack]>>();
    for (const [k, p] of this.publishers) {
      if (p.leg.closed) continue;
      const [room, user] = k.split('\u0000') as [string, string];
      for (const t of p.tracks) {
        if (t.audioLevel === undefined || t.closed) continue;
        let list = rooms.get(room);
        if (!list) rooms.set(room, (list = []));
        list.push([user, t]);
      }
    }
    return rooms;
  }

  private sweep(): void {
    const now = Date.now();
    const gapMs = now - this.lastSweep;
    this.lastSweep = now;
    // After an event-loop stall, what the peers sent meanwhile is still queued behind
    // this timer: judging silence now would reap every leg at once. Judge next time.
    if (gapMs > 3 * this.sweepEveryMs) {
      this.log.warn({ stalledMs: gapMs }, 'event loop stalled; the peer watchdog skips a round');
      return;
    }
    const peers = [...this.publishers.values(), ...this.subscriptions.values(), ...this.voices];
    for (const leg of peers.map((p) => p.leg)) {
      if (
        leg.connected
          ? now - leg.lastHeard > this.settings.peerTimeoutMs
          : now - leg.createdAt > CONNECT_TIMEOUT_MS
      ) {
        leg.close(leg.connected ? 'peer silent' : 'peer never connected');
      }
    }
  }

  private get peerCount(): number {
    return this.publishers.size + this.subscriptions.size + this.voices.size;
  }

  /**
   * Why a new peer connection would be refused now, or undefined. Refusing at the door
   * keeps the calls already running whole: a saturated SFU that takes one more leg makes
   * every leg late, and the newcomer's connection times out anyway.
   */
  refusal(): string | undefined {
    const max = this.settings.maxPeers ?? 0;
    if (max > 0 && this.peerCount >= max) return `peer limit reached (${max} peer connections)`;
    return this.settings.admission?.();
  }

  private admit(): void {
    const why = this.refusal();
    if (why === undefined) return;
    this.refused++;
    this.log.warn({ why, peers: this.peerCount }, 'new peer refused');
    throw new ChorusError('overloaded', why, { retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS });
  }

  /**
   * `user` publishes into `room` (replacing an earlier publish of theirs on the same peer
   * connection); returns the answer. `sources` names where each kind comes from (default
   * microphone and camera). `pc` names another peer connection of theirs (a screen share
   * next to the camera): its own leg, offered to other nodes as the publisher `<user>\0<pc>`
   * (no identity has a control character), whose tracks a subscriber there gets with the
   * user's others.
   */
  async publish(
    room: Room,
    user: UserId,
    offer: string,
    sources?: Partial<Record<'audio' | 'video', TrackSource>>,
    pc?: string,
  ): Promise<string> {
    this.admit();
    const k = legKey(room.id, user, pc);
    const who = asParticipantId(user);
    room.join(who); // refused (not_found) once the room has closed
    const peer = new PublisherPeer(this.settings, this.log.child({ room: room.id, user, role: 'publisher' }));
    const previous = this.publishers.get(k);
    this.publishers.set(k, peer);
    // The replaced leg's tracks stay until this one's replace them (same ids): a
    // republish never shows the room without its publisher.
    previous?.leg.close('replaced by a new publish');
    // Each track is offered to other nodes and the publisher's record rewritten, one
    // write after the other (the last names every track).
    const relayIds: string[] = [];
    let recorded = Promise.resolve();
    const relay = this.relay;
    const relayUser = pc === undefined ? user : `${user}\u0000${pc}`;
    if (relay) this.relayIds.set(peer, relayIds);
    const ownIds = new Set([publishedTrackId(user, 'audio', pc), publishedTrackId(user, 'video', pc)]);
    peer.onTrack((t) => {
      this.trackIds.set(t, publishedTrackId(user, t.kind, pc));
      const track = room.join(who).publish({
        id: publishedTrackId(user, t.kind, pc),
        kind: t.kind,
        source: sources?.[t.kind] ?? (t.kind === 'audio' ? 'microphone' : 'camera'),
        codec: t.codec.name,
      });
      track.events.on('ended', (e) => peer.leg.close(e.reason));
      this.layersWanted.watch(room.id, user, track.id, t);
      track.events.on('muted', (e) => {
        t.muted = e.muted;
        // The subscribers' decoders need a fresh picture to start from again.
        if (!e.muted) t.requestKeyframe(true);
      });
      if (!relay) return;
      relayIds.push(relay.offer(t));
      recorded = recorded.then(() =>
        peer.leg.closed ? undefined : relay.record(room.id, relayUser, peer.tracks, relayIds),
      );
    });
    // Before its first track, only the room's closing ends the leg.
    const offRoom = room.events.on('close', (e) => peer.leg.close(e.reason));
    peer.leg.onClose(() => {
      offRoom();
      this.retire(peer.tracks);
      this.relayIds.delete(peer);
      // After the record's last write, so no write lands after its removal.
      if (relay)
        recorded = recorded.then(() => relay.withdraw(room.id, relayUser, relayIds, 'publisher left'));
      if (this.publishers.get(k) === peer) {
        this.publishers.delete(k);
        const p = room.participant(who);
        // Only this leg's tracks: the participant's other peer connection goes on.
        for (const t of [...(p?.tracks.values() ?? [])]) if (ownIds.has(t.id)) t.close('publisher left');
        // Still receiving others: stays (the room lets the idle leave by themselves).
        if (p?.joined && p.idle) p.leave('publisher left');
      }
      const subs = this.subscribersOf.get(k);
      this.subscribersOf.delete(k);
      for (const s of subs ?? []) s.leg.close('publisher left');
    });
    try {
      const roomVideo = await this.roomVideoCodec(room, k);
      const { answer } = await peer.answer(offer, roomVideo, this.settings.videoCodecs);
      // The tracks known by now are recorded before the answer goes back: whoever learns
      // of the publisher from it can subscribe on any node.
      await recorded;
      return answer;
    } catch (err) {
      peer.leg.close('negotiation failed');
      throw negotiationFailure(err);
    }
  }

  /**
   * The room's video codec: the one its other publishers send, here or on other nodes
   * (the track directory), or undefined when none does and `k`'s offer chooses. Every
   * subscriber then decodes one codec. Two first publishers negotiating at the same
   * moment on two nodes may each choose; with the same offers (browsers') they agree.
   */
  private async roomVideoCodec(room: Room, k: string): Promise<CodecChoice | undefined> {
    const local = (): CodecChoice | undefined => {
      const prefix = `${room.id}\u0000`;
      for (const [pk, p] of this.publishers) {
        if (pk !== k && pk.startsWith(prefix) && !p.leg.closed && p.videoCodec) return p.videoCodec;
      }
      return undefined;
    };
    const here = local();
    if (here || !this.relay) return here;
    // A store that fails leaves the choice to this offer, as for the room's first publisher.
    const remote = await this.relay.roomVideoCodec(room.id).catch((err: unknown) => {
      this.log.warn(
        { err, room: room.id },
        "the room's video codec could not be read from the track directory",
      );
      return undefined;
    });
    return local() ?? remote;
  }

  /** Ends `user`'s publisher leg `pc` in `room` (its tracks end with it); false when there is none. */
  unpublish(room: Room, user: UserId, pc: string | undefined): boolean {
    const peer = this.publishers.get(legKey(room.id, user, pc));
    if (!peer || peer.leg.closed) return false;
    peer.leg.close('unpublished');
    return true;
  }

  /**
   * `user`'s open leg in `room`: its publisher peer connection `pc` (undefined: the main
   * one), or its subscription to `publisher`; undefined when there is none (trickle ICE).
   */
  legOf(
    room: Room,
    user: UserId,
    target: { pc?: string | undefined } | { publisher: UserId },
  ): PeerLeg | undefined {
    const peer =
      'publisher' in target
        ? this.subscriptions.get(`${key(room.id, target.publisher)}\u0000${user}`)
        : this.publishers.get(legKey(room.id, user, target.pc));
    return peer && !peer.leg.closed ? peer.leg : undefined;
  }

  /** True when `user` has published tracks in the room. */
  isPublishing(room: Room, user: UserId): boolean {
    const p = this.publishers.get(key(room.id, user));
    return p !== undefined && !p.leg.closed && p.tracks.length > 0;
  }

  private retire(tracks: readonly PublishedTrack[]): void {
    for (const t of tracks) {
      this.retired.packetsIn += t.packetsIn;
      this.retired.packetsOut += t.packetsOut;
      this.retired.keyframeRequests += t.keyframeRequests;
      this.retired.sendErrors += t.sendErrors;
      this.retired.retransmissions += t.retransmissions;
      this.retired.nacksSent += t.nacksSent;
      this.retired.rtxRepaired += t.rtxRepaired;
    }
  }

  /**
   * The tracks `publisher` sends in `room`: its local leg's, or, when another node carries
   * it, this node's relayed copies of them (held for one more leg: release when it ends).
   */
  private async sourceTracks(
    room: Room,
    publisher: UserId,
  ): Promise<{ tracks: readonly PublishedTrack[]; remotes?: RemotePublisher[] }> {
    // Every local leg of the publisher: its main peer connection and any other (screen).
    const main = key(room.id, publisher);
    const local: PublishedTrack[] = [];
    for (const [k, p] of this.publishers) {
      if ((k === main || k.startsWith(`${main}\u0000`)) && !p.leg.closed) local.push(...p.tracks);
    }
    if (local.length > 0) {
      this.admit();
      return { tracks: local };
    }
    this.admit();
    const relay = this.relay;
    // Its main peer connection's publisher and those of its other ones (`<user>\0<pc>`).
    const named = relay
      ? (await relay.remotePublishers(room.id)).filter((u) => u.startsWith(`${publisher}\u0000`))
      : [];
    const found = relay ? await Promise.all([publisher, ...named].map((u) => relay.attach(room.id, u))) : [];
    const remotes = found.filter((r): r is RemotePublisher => r !== undefined && !r.closed);
    if (remotes.length === 0) {
      throw new ChorusError('not_found', `peer ${publisher} is not publishing in room ${room.id}`);
    }
    for (const remote of remotes) {
      remote.hold();
      const [, pc] = remote.user.split('\u0000');
      for (const t of remote.tracks) this.trackIds.set(t, publishedTrackId(publisher, t.kind, pc));
      if (!this.relayedWatched.has(remote)) {
        this.relayedWatched.add(remote);
        remote.onClose(() => this.retire(remote.tracks));
      }
    }
    return { tracks: remotes.flatMap((r) => r.tracks), remotes };
  }

  /**
   * The size (pixels; 0: no limit) at which `user` shows `publisher`'s video in `room`:
   * its leg gets the smallest simulcast layer at least that large, or a lower one when its
   * bandwidth is short; `active: false` (shown nowhere) stops the video to the leg and
   * frees its layers at the publisher. `trackId` (the room's track id) limits it to one
   * of the leg's videos (camera or screen); absent: all of them. False when `user` has no
   * such subscription (or no such video in it) on this node.
   */
  setLayerPreference(
    room: Room,
    user: UserId,
    publisher: UserId,
    size: { maxWidth: number; maxHeight: number; active?: boolean },
    trackId?: string,
  ): boolean {
    const ok = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 16_384;
    if (!ok(size.maxWidth) || !ok(size.maxHeight))
      throw new ChorusError('invalid_argument', 'maxWidth and maxHeight are whole pixels from 0 to 16384');
    const peer = this.subscriptions.get(`${key(room.id, publisher)}\u0000${user}`);
    if (!peer || peer.leg.closed) return false;
    let found = false;
    for (const { source, target } of peer.targets) {
      if (!target.layer) continue;
      if (trackId !== undefined && this.trackIds.get(source) !== trackId) continue;
      found = true;
      const leg = target.layer;
      const was = leg.preference;
      const wider = (from: number, to: number): boolean => from > 0 && (to === 0 || to > from);
      // Shown larger (or again): a fresh start up to the new size. A limit learnt while the
      // leg received a small layer says little of what the link carries (its REMB only ever
      // rose to ~1.5x that layer); if the larger one is too much, loss brings it down, and
      // REMB once it has covered that layer (leg-layer.ts, staleUntil).
      if (
        wider(was.maxWidth, size.maxWidth) ||
        wider(was.maxHeight, size.maxHeight) ||
        (was.active === false && size.active !== false)
      ) {
        leg.freshStart(Date.now());
      }
      was.maxWidth = size.maxWidth;
      was.maxHeight = size.maxHeight;
      was.active = size.active !== false;
    }
    return found;
  }

  /**
   * `user` receives `publisher`'s tracks; returns the answer. `trackIds` (optional) names
   * the track each receiving section wants, in section order: with two video tracks
   * (camera and screen) the sections are matched to those, else to the tracks in order.
   */
  async subscribe(
    room: Room,
    user: UserId,
    publisher: UserId,
    offer: string,
    trackIds?: readonly string[],
  ): Promise<string> {
    const pk = key(room.id, publisher);
    const found = await this.sourceTracks(room, publisher);
    const remotes = found.remotes ?? [];
    const tracks = trackIds ? this.inOrder(found.tracks, trackIds) : found.tracks;
    const sk = `${pk}\u0000${user}`;
    this.subscriptions.get(sk)?.leg.close('replaced by a new subscription');
    let peer: SubscriberPeer;
    try {
      peer = new SubscriberPeer(
        this.settings,
        this.log.child({ room: room.id, user, publisher, role: 'subscriber' }),
        publisher,
        user,
        this.padding,
      );
    } catch (err) {
      // No leg to hold the relayed publisher: let go of it (its last holder stops the relay).
      for (const r of remotes) r.release();
      throw err;
    }
    if (remotes.length > 0) {
      // The relayed publisher ends as a local one leaves: its legs here stop. The end of
      // one of its other peer connections (a screen share) ends only that one's tracks.
      for (const r of remotes) if (r.user === publisher) r.onClose((reason) => peer.leg.close(reason));
    } else {
      let set = this.subscribersOf.get(pk);
      if (!set) this.subscribersOf.set(pk, (set = new Set()));
      set.add(peer);
    }
    this.subscriptions.set(sk, peer);
    let offDropped = (): void => undefined;
    peer.leg.onClose(() => {
      offDropped();
      for (const r of remotes) r.release();
      this.subscribersOf.get(pk)?.delete(peer);
      if (this.subscriptions.get(sk) === peer) {
        this.subscriptions.delete(sk);
        room.participant(asParticipantId(user))?.unsubscribe(publisher, 'subscriber left');
      }
    });
    try {
      const answer = await peer.answer(offer, tracks);
      const participant = room.join(asParticipantId(user)); // not_found once the room has closed
      participant.subscribe(publisher);
      // The participant left or the room closed: the subscription drops, the leg stops.
      offDropped = participant.events.on('unsubscribed', (e) => {
        if (e.source === publisher) peer.leg.close(e.reason);
      });
      return answer;
    } catch (err) {
      peer.leg.close('negotiation failed');
      throw negotiationFailure(err);
    }
  }

  /** `tracks` with those named by `ids` first, in that order (a stable sort: the rest keep theirs). */
  private inOrder(tracks: readonly PublishedTrack[], ids: readonly string[]): PublishedTrack[] {
    const rank = (t: PublishedTrack): number => {
      const id = this.trackIds.get(t);
      const i = id === undefined ? -1 : ids.indexOf(id);
      return i < 0 ? ids.length : i;
    };
    return [...tracks].sort((a, b) => rank(a) - rank(b));
  }

  /** A new voice peer (one Opus section both ways), under the SFU's silence watchdog. */
  voicePeer(cname: string, log: Logger): VoicePeer {
    this.admit();
    const peer = new VoicePeer(this.settings, log, cname);
    this.voices.add(peer);
    peer.leg.onClose(() => this.voices.delete(peer));
    return peer;
  }

  /** Who publishes in `room`, on this node and (through the relay's directory) on others. */
  async publishersOf(room: Room): Promise<string[]> {
    const local = room.publishers() as string[];
    // A participant's other peer connections (`<user>\0<pc>`) are the same publisher.
    const remote = ((await this.relay?.remotePublishers(room.id)) ?? []).map((u) => u.split('\u0000')[0]!);
    return [...new Set([...local, ...remote])];
  }

  roomStats(room: Room): RoomMediaStats {
    const prefix = `${room.id}\u0000`;
    const now = Date.now();
    const publishers: RoomMediaStats['publishers'] = [];
    for (const [k, p] of this.publishers) {
      if (!k.startsWith(prefix) || p.leg.closed) continue;
      const ids = this.relayIds.get(p) ?? [];
      publishers.push({
        user: k.slice(prefix.length).split('\u0000')[0]!,
        tracks: p.tracks.map((t, i) => {
          const sent = ids[i] === undefined ? undefined : this.relay?.sentBy(ids[i]);
          return { ...trackStats(t, now), ...(sent ? { relay: sent } : {}) };
        }),
      });
    }
    for (const r of this.relay?.remotesOf(room.id) ?? []) {
      publishers.push({
        user: r.user.split('\u0000')[0]!,
        node: r.node,
        tracks: r.tracks.map((t) => ({
          ...trackStats(t, now),
          relay: { packets: t.packetsIn, from: r.node },
        })),
      });
    }
    return { publishers };
  }

  stats(): SfuStats {
    const tracks = [...this.publishers.values()].flatMap((p) => p.tracks);
    for (const r of this.relay?.allRemotes() ?? []) tracks.push(...r.tracks);
    const s: SfuStats = {
      peers: this.peerCount,
      publishers: this.publishers.size,
      subscribers: this.subscriptions.size,
      voices: this.voices.size,
      publishedTracks: tracks.length,
      forwardTargets: 0,
      refused: this.refused,
      reception: summarizeReception(tracks),
      paddingBytes: this.padding.bytes,
      paddingPackets: this.padding.packets,
      probesStarted: this.padding.counts.started,
      probesSucceeded: this.padding.counts.succeeded,
      probesFailed: this.padding.counts.failed,
      paddingLegs: this.padding.padding,
      ...this.retired,
      ...(this.relay?.stats() ?? NO_RELAY),
    };
    for (const t of tracks) {
      s.forwardTargets += t.targets.length;
      s.packetsIn += t.packetsIn;
      s.packetsOut += t.packetsOut;
      s.keyframeRequests += t.keyframeRequests;
      s.sendErrors += t.sendErrors;
      s.retransmissions += t.retransmissions;
      s.nacksSent += t.nacksSent;
      s.rtxRepaired += t.rtxRepaired;
    }
    return s;
  }

  close(): void {
    clearInterval(this.watchdog);
    this.speakers.close();
    this.relay?.stop();
    for (const p of [...this.publishers.values()]) p.leg.close('server shutting down');
    for (const s of [...this.subscriptions.values()]) s.leg.close('server shutting down');
    for (const v of [...this.voices]) v.leg.close('server shutting down');
    this.relay?.close();
    this.padding.close();
  }
}
