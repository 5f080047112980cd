import type { Logger } from 'pino';
import type { Bus } from '../../ports/bus/bus.js';
import type { Membership } from '../../ports/membership/membership.js';
import type { Store } from '../../ports/store/store.js';
import type { PublishedTrack } from '../webrtc/published-track.js';
import type { CodecChoice } from '../webrtc/codec-policy.js';
import { RelayOutlet } from './relay-outlet.js';
import { INTEREST_REFRESH_MS } from './relay-control.js';
import { RemotePublisher, type RelaySettings } from './remote-publisher.js';
import { TrackDirectory, type Publication } from './track-directory.js';

export interface SfuRelayStats {
  /** Packets this node published for other nodes (once per packet, not per node). */
  relayPacketsSent: number;
  /** Bus messages those packets went in (one batch per track and event-loop turn). */
  relayMessagesSent: number;
  /** Packets relayed to this node from publishers on other nodes. */
  relayPacketsReceived: number;
  /** Local tracks some other node receives now. */
  relayedOut: number;
  /** Publishers on other nodes this node receives now. */
  relayedIn: number;
  /** Relayed packets and control messages dropped as malformed. */
  relayDropped: number;
}

const key = (room: string, user: string): string => `${room}\u0000${user}`;

/** How long a new stand-in is checked against its publisher's record (watchGrowth). */
const GROWTH_WATCH_MS = 10_000;

/**
 * How the SFU reaches publishers on other nodes, through the ports only (bus, store,
 * membership): on one node it finds nobody else and relays nothing. Local tracks are
 * announced in the track directory and offered to other nodes (RelayOutlet); a subscriber
 * of a publisher this node does not carry gets that publisher's RemotePublisher, made once
 * per node and shared by every local leg.
 */
export class SfuRelay {
  private readonly outlet: RelayOutlet;
  private readonly directory: TrackDirectory;
  private readonly remotes = new Map<string, RemotePublisher>();
  private readonly attaching = new Map<string, Promise<RemotePublisher | undefined>>();
  private readonly offGone: () => void;
  private retiredReceived = 0;
  /** Set when the server stops: its records are left to the readers' liveness check. */
  private stopping = false;
  private retiredMalformed = 0;

  constructor(
    private readonly bus: Bus,
    store: Store,
    private readonly membership: Membership,
    private readonly settings: RelaySettings,
    private readonly log: Logger,
  ) {
    this.outlet = new RelayOutlet(bus, membership.selfId, log);
    this.directory = new TrackDirectory(store);
    // The prompt path for a killed node: its relayed publishers end here at once.
    this.offGone = membership.on('nodeGone', (node) => {
      for (const r of [...this.remotes.values()]) if (r.node === node.id) r.close('publisher node gone');
    });
  }

  private get selfInstance(): string {
    return this.membership.nodes().find((n) => n.id === this.membership.selfId)?.instance ?? '';
  }

  /** True when the record's node is alive as the same process that wrote it. */
  private live(p: Publication): boolean {
    const n = this.membership.nodes().find((x) => x.id === p.node);
    return n !== undefined && (p.instance === '' || n.instance === p.instance);
  }

  /** Offers a local track to other nodes; returns its relay id (announce it with `record`). */
  offer(track: PublishedTrack): string {
    return this.outlet.offer(track);
  }

  /**
   * Records `user`'s local tracks (offered as `ids`) in the directory, so other nodes can
   * subscribe to them. A store that fails leaves the media local (logged).
   */
  async record(
    room: string,
    user: string,
    tracks: readonly PublishedTrack[],
    ids: readonly string[],
  ): Promise<void> {
    if (this.stopping) return;
    const publication: Publication = {
      node: this.membership.selfId,
      instance: this.selfInstance,
      tracks: tracks.map((t, i) => ({
        relay: ids[i]!,
        kind: t.kind,
        codec: {
          kind: t.codec.kind,
          name: t.codec.name,
          payloadType: t.codec.payloadType,
          clockRate: t.codec.clockRate,
          ...(t.codec.fmtp === undefined ? {} : { fmtp: t.codec.fmtp }),
        },
        ...(t.redPayloadType === undefined ? {} : { red: t.redPayloadType }),
        ...(t.simulcast === undefined ? {} : { layers: t.simulcast.layers.length }),
      })),
    };
    try {
      await this.directory.announce(room, user, publication);
    } catch (err) {
      this.log.warn({ err, room, user }, 'sfu relay: tracks not announced; other nodes cannot subscribe');
    }
  }

  /** The tracks ended: other nodes' subscribers end too, and the record goes. */
  withdraw(room: string, user: string, ids: readonly string[], reason: string): Promise<void> {
    for (const id of ids) this.outlet.withdraw(id, reason);
    // A node stopping leaves the cluster at once (membership): its records are dead to
    // every reader, and the store may close before a write could land.
    if (this.stopping) return Promise.resolve();
    return this.directory.withdraw(room, user, ids).catch((err: unknown) => {
      this.log.warn({ err, room, user }, 'sfu relay: record not withdrawn (readers check the node)');
    });
  }

  /**
   * The publisher `user` of `room` on another node, as this node receives it (made on
   * first use, shared after); undefined when nobody publishes it anywhere else. A stand-in
   * whose publisher's record names tracks it lacks is outdated (see `outdated`): it ends,
   * with its legs here, and a fresh one is made from the record.
   */
  async attach(room: string, user: string): Promise<RemotePublisher | undefined> {
    const k = key(room, user);
    const known = this.remotes.get(k);
    if (known && !known.closed) {
      if (!(await this.outdated(known, room, user))) return known;
      known.close('publisher has more tracks');
      // Whoever attached meanwhile may have made the fresh one already: share it.
      return this.attach(room, user);
    }
    let pending = this.attaching.get(k);
    if (!pending) {
      pending = this.connect(room, user, k).finally(() => this.attaching.delete(k));
      this.attaching.set(k, pending);
    }
    return pending;
  }

  /**
   * True when the publisher's record names a track `remote` does not carry. A publisher's
   * tracks are announced one record write after the other, and the room hears of each
   * track before its write lands (trackPublished goes out as the track appears): a node
   * that read the record in between made a stand-in without the last track, and every leg
   * on it would go without that track for good (its subscriber already asked for it).
   * Also true for a publisher that published again (new relay ids) before its old
   * tracks' end arrived here. A record that cannot be read (absent, store down) is no proof.
   */
  private async outdated(remote: RemotePublisher, room: string, user: string): Promise<boolean> {
    const p = await this.directory.find(room, user).catch(() => undefined);
    if (!p) return false;
    const have = new Set(remote.publication.tracks.map((t) => t.relay));
    return p.tracks.some((t) => !have.has(t.relay));
  }

  /**
   * Checks a new stand-in against its publisher's record while that may still be being
   * written (GROWTH_WATCH_MS): one that turns out outdated ends, so its legs here are made
   * again (by their clients, as after any leg loss) with every track.
   */
  private watchGrowth(remote: RemotePublisher, room: string, user: string): void {
    const until = Date.now() + GROWTH_WATCH_MS;
    const timer = setInterval(() => {
      if (remote.closed || Date.now() > until) {
        clearInterval(timer);
        return;
      }
      this.outdated(remote, room, user)
        .then((stale) => {
          if (stale) remote.close('publisher has more tracks');
        })
        .catch((err: unknown) =>
          this.log.warn({ err, room, user }, 'sfu relay: outdated stand-in not ended'),
        );
    }, INTEREST_REFRESH_MS);
    timer.unref();
    remote.onClose(() => clearInterval(timer));
  }

  private async connect(room: string, user: string, k: string): Promise<RemotePublisher | undefined> {
    const p = await this.directory.find(room, user);
    if (!p || p.node === this.membership.selfId || !this.live(p) || p.tracks.length === 0) return undefined;
    const remote = new RemotePublisher(
      this.bus,
      this.membership.selfId,
      user,
      p,
      this.settings,
      this.log.child({ room, publisher: user, from: p.node }),
    );
    // Only a "no" means the publisher is not there: its node answered without the track,
    // or nobody listens on its subject (want() then closes the stand-in). An unanswered
    // `want` (a busy node, NATS slow under load) is no answer: the stand-in stays, its
    // refresh asks again every 2 s and three unanswered in a row end it. Reported as "not
    // publishing", the subscriber would wait for a track event that never comes.
    if (!(await remote.want()) && remote.closed) return undefined;
    this.remotes.set(k, remote);
    remote.onClose(() => {
      if (this.remotes.get(k) === remote) this.remotes.delete(k);
      this.retiredReceived += remote.packetsIn;
      this.retiredMalformed += remote.malformed;
    });
    this.watchGrowth(remote, room, user);
    return remote;
  }

  /** This node's stand-in for a remote publisher, if it has one now. */
  remote(room: string, user: string): RemotePublisher | undefined {
    return this.remotes.get(key(room, user));
  }

  /** Stand-ins of `room`'s remote publishers this node holds. */
  remotesOf(room: string): RemotePublisher[] {
    const prefix = `${room}\u0000`;
    return [...this.remotes].filter(([k]) => k.startsWith(prefix)).map(([, r]) => r);
  }

  allRemotes(): IterableIterator<RemotePublisher> {
    return this.remotes.values();
  }

  /** Who publishes in `room` on other live nodes (from the directory). */
  async remotePublishers(room: string): Promise<string[]> {
    const all = await this.directory.publishersOf(room);
    return all
      .filter(
        ({ publication: p }) => p.node !== this.membership.selfId && this.live(p) && p.tracks.length > 0,
      )
      .map(({ user }) => user);
  }

  /** The video codec a publisher of `room` on another live node sends, if one does. */
  async roomVideoCodec(room: string): Promise<CodecChoice | undefined> {
    for (const { publication: p } of await this.directory.publishersOf(room)) {
      if (p.node === this.membership.selfId || !this.live(p)) continue;
      const video = p.tracks.find((t) => t.kind === 'video');
      if (video) return { ...video.codec, fmtp: video.codec.fmtp };
    }
    return undefined;
  }

  /** What a local track sends to other nodes (for a room's stats). */
  sentBy(id: string): { packets: number; nodes: number } | undefined {
    return this.outlet.sentBy(id);
  }

  stats(): SfuRelayStats {
    let received = this.retiredReceived;
    let malformed = this.retiredMalformed + this.outlet.dropped;
    for (const r of this.remotes.values()) {
      received += r.packetsIn;
      malformed += r.malformed;
    }
    return {
      relayPacketsSent: this.outlet.packetsSent,
      relayMessagesSent: this.outlet.messagesSent,
      relayPacketsReceived: received,
      relayedOut: this.outlet.relaying,
      relayedIn: this.remotes.size,
      relayDropped: malformed,
    };
  }

  /** The server is stopping: no more store writes. */
  stop(): void {
    this.stopping = true;
  }

  close(): void {
    this.stopping = true;
    this.offGone();
    for (const r of [...this.remotes.values()]) r.close('server shutting down');
    this.outlet.close();
  }
}
