import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { ThrottledLog } from '../../lib/throttled-log.js';
import { TypedEmitter } from '../../lib/typed-emitter.js';
import { subjectToken, type Bus, type BusSubscription } from '../bus/bus.js';
import { MemberTable } from './member-table.js';
import type { LocalDetails, Membership, MembershipEvents, NodeInfo } from './membership.js';
import { pingSubject, WIRE_PROTOCOL } from './membership.js';
import { checkJoin } from './join-check.js';
import { listKvKeys } from '../store/kv-key-listing.js';
import { parseNodeInfo } from './node-info.js';
import { localInfo, withDetails } from './self-info.js';

export interface NatsMembershipOptions {
  nc: NatsConnection;
  /** The cluster bus: pings to `chorus.node.<id>.ping` go through it. */
  bus: Bus;
  nodeId: string;
  log: Logger;
  /** The wire protocol this node speaks (tests pretend another one). */
  protocol?: number;
  /** JetStream replicas of the bucket (1 on a single nats-server). */
  replicas?: number;
  heartbeatMs?: number;
  staleMs?: number;
  bucket?: string;
}

const decoder = new TextDecoder();

/** The bucket of announcements: one key per node id, its last heartbeat the value. The
 * dash keeps it apart from the store port's buckets, which are all `chorus_<name>`. */
export const MEMBERS_BUCKET = 'chorus-nodes';
const HEARTBEAT_MS = 2000;
/**
 * Three missed heartbeats. Judged when our own heartbeat comes back (every 2 s), so a dead
 * node is dropped 6 to 8 s after its last heartbeat, so at most 8 s after it died.
 */
const STALE_MS = 6000;
const SWEEP_MS = 1000;
/**
 * The bucket's max age: an entry not rewritten for this long is removed by the server,
 * so dead nodes do not pile up. Longer than STALE_MS: liveness is decided by the
 * heartbeats each node sees, not by the server removing entries (nats-server 2.9 sends
 * no notice when max age removes a message, and per-key TTLs need 2.11).
 */
const FORGET_MS = 30_000;

/**
 * Membership on JetStream KV. Each node writes its announcement to `chorus-nodes/<id>`
 * every `heartbeatMs` and watches the bucket; `MemberTable` turns what it sees into
 * `nodeJoined` / `nodeGone`. Joining checks first that no live node holds the same id
 * and that the cluster speaks the same wire protocol (see join-check.ts).
 */
export class NatsMembership implements Membership {
  readonly selfId: string;
  private readonly events: TypedEmitter<MembershipEvents>;
  private readonly table: MemberTable;
  /** Entries anyone with access to NATS could write: a few lines a second at most. */
  private readonly badEntries: ThrottledLog;
  /** Heartbeats and the watch failing while NATS is away: one line a second at most. */
  private readonly trouble: ThrottledLog;
  private details: LocalDetails = {};
  private info: NodeInfo;
  private readonly timers: NodeJS.Timeout[] = [];
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private heartbeatInFlight = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly kv: KV,
    private readonly bus: Bus,
    private readonly pings: BusSubscription,
    self: NodeInfo,
    private readonly log: Logger,
    private readonly heartbeatMs: number,
    private readonly staleMs: number,
  ) {
    this.selfId = self.id;
    this.info = self;
    this.events = new TypedEmitter(log);
    this.badEntries = new ThrottledLog(log, 5);
    this.trouble = new ThrottledLog(log, 1);
    this.table = new MemberTable(
      self,
      staleMs,
      (event, info) => {
        log.info(
          { event, node: info.id, instance: info.instance, url: info.httpUrl },
          event === 'nodeGone' ? 'node gone' : 'node joined',
        );
        this.events.emit(event, info);
      },
      performance.now(),
      heartbeatMs * 1.5,
    );
  }

  /**
   * Joins the cluster: refuses (PortStartError) when a live node holds this id or the
   * cluster speaks another wire protocol, then announces itself and starts watching.
   */
  static async join(opts: NatsMembershipOptions): Promise<NatsMembership> {
    const log = opts.log;
    const bucket = opts.bucket ?? MEMBERS_BUCKET;
    const kv = await new Kvm(opts.nc).create(bucket, {
      history: 1,
      ttl: FORGET_MS,
      storage: 'file',
      replicas: opts.replicas ?? 1,
    });
    const self = localInfo(opts.nodeId, opts.protocol ?? WIRE_PROTOCOL);
    await checkJoin(kv, () => listKvKeys(jetstream(opts.nc), bucket), opts.bus, self);
    const pings = opts.bus.subscribe(pingSubject(subjectToken(self.id)), (msg) =>
      msg.respond?.(self.instance),
    );
    const m = new NatsMembership(
      kv,
      opts.bus,
      pings,
      self,
      log,
      opts.heartbeatMs ?? HEARTBEAT_MS,
      opts.staleMs ?? STALE_MS,
    );
    m.start();
    log.info({ node: self.id, instance: self.instance, protocol: self.protocol }, 'joined the cluster');
    return m;
  }

  nodes(): NodeInfo[] {
    this.table.setSelf(this.currentInfo());
    return this.table.nodes();
  }

  isAlive(nodeId: string): boolean {
    return this.table.has(nodeId);
  }

  on<K extends keyof MembershipEvents>(event: K, fn: (e: MembershipEvents[K]) => void): () => void {
    return this.events.on(event, fn);
  }

  describe(details: LocalDetails): void {
    this.details = { ...this.details, ...details };
    this.heartbeat(); // tell the others the URL now, not at the next beat
  }

  heardMsAgo(nodeId: string): number | undefined {
    const ms = this.table.heardMsAgo(nodeId, performance.now());
    return ms === undefined ? undefined : Math.round(ms);
  }

  close(): Promise<void> {
    this.closing ??= this.leave();
    return this.closing;
  }

  private async leave(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.watcher?.stop();
    this.pings.unsubscribe();
    // Deleting the entry tells every other node at once; bounded, NATS may be down.
    await Promise.race([
      this.kv
        .delete(this.selfId)
        .catch((err: unknown) => this.log.warn({ err }, 'could not remove this node from the cluster')),
      new Promise((r) => setTimeout(r, 1000).unref()),
    ]);
  }

  private start(): void {
    const beat = setInterval(() => this.heartbeat(), this.heartbeatMs);
    const sweep = setInterval(() => this.sweep(), SWEEP_MS);
    beat.unref();
    sweep.unref();
    this.timers.push(beat, sweep);
    void this.watch();
  }

  private currentInfo(): NodeInfo {
    this.info = withDetails(this.info, this.details);
    return this.info;
  }

  private heartbeat(): void {
    if (this.closed || this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    this.kv
      .put(this.selfId, JSON.stringify(this.currentInfo()))
      .catch((err: unknown) => this.trouble.warn({ err: String(err) }, 'heartbeat not written'))
      .finally(() => (this.heartbeatInFlight = false));
  }

  private sweep(): void {
    const now = performance.now();
    const wasPaused = this.table.paused;
    this.table.sweep(now);
    if (!wasPaused && this.table.paused) {
      this.log.warn(
        "cluster view paused: this node's own heartbeats are not coming back; nobody is declared gone meanwhile",
      );
    }
    // Our own beats have not come back for long: the watch may be stuck; start it again.
    if (this.table.selfSilentFor(now) > 2 * this.staleMs) this.watcher?.stop();
  }

  /** Follows the bucket for as long as the node runs, starting again if the watch ends. */
  private async watch(): Promise<void> {
    while (!this.closed) {
      try {
        const w = await this.kv.watch();
        this.watcher = w;
        if (this.closed) w.stop();
        for await (const e of w) this.onEntry(e);
      } catch (err) {
        this.trouble.warn({ err: String(err) }, 'cluster membership watch failed; retrying');
      }
      if (!this.closed) await new Promise((r) => setTimeout(r, SWEEP_MS));
    }
  }

  /**
   * An entry already there when the watch began may be a dead node's (max age keeps it for
   * 30 s): it counts as joined only if that very instance answers its ping. A live node
   * that does not answer now is added by its next heartbeat anyway.
   */
  private async seenIfAnswering(info: NodeInfo): Promise<void> {
    try {
      const answer = await this.bus.request(pingSubject(subjectToken(info.id)), '', { timeoutMs: 1500 });
      // A heartbeat seen meanwhile is newer than this entry: keep it.
      if (this.closed || this.table.knows(info) || decoder.decode(answer) !== info.instance) return;
      this.table.seen(info, performance.now());
    } catch {
      // No responder (dead), no answer or no bus: wait for a heartbeat.
    }
  }

  private onEntry(e: KvWatchEntry): void {
    if (e.operation !== 'PUT') {
      this.table.left(e.key);
      return;
    }
    const info = parseNodeInfo(e.value);
    if (!info || info.id !== e.key) {
      this.badEntries.warn({ key: e.key }, 'malformed cluster member entry dropped');
      return;
    }
    if (!e.isUpdate && info.id !== this.selfId && !this.table.knows(info)) {
      void this.seenIfAnswering(info);
      return;
    }
    const wasPaused = this.table.paused;
    this.table.seen(info, performance.now());
    if (wasPaused && !this.table.paused)
      this.log.info('cluster view resumed: every node has a fresh stale period');
  }
}
