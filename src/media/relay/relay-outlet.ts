import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ThrottledLog } from '../../lib/throttled-log.js';
import type { Bus, BusMessage, BusSubscription } from '../../ports/bus/bus.js';
import type { PublishedTrack } from '../webrtc/published-track.js';
import { RelayBatcher } from './relay-batch.js';
import { INTEREST_TTL_MS, readRelayControl } from './relay-control.js';
import { endSubject, relayControlSubject, rtpSubject } from './relay-subjects.js';

/** A local track other nodes may receive, and which of them want it until when. */
interface Outlet {
  readonly track: PublishedTrack;
  readonly subject: string;
  /** Node id -> when its interest lapses. */
  readonly interest: Map<string, number>;
  /** Node id -> the simulcast layers its legs receive (absent: it did not say). */
  readonly layers: Map<string, readonly boolean[]>;
  /** Made once per track: the per-packet hand-over to the track's batch. */
  readonly send: (packet: Buffer) => void;
  /** A video frame's packets (an event-loop turn's for audio) as one bus message (relay-batch.ts). */
  readonly batch: RelayBatcher;
  sent: number;
}

const encoder = new TextEncoder();

/**
 * What the nodes receiving a simulcast track want of it, for its "layers wanted" (dynacast
 * across nodes): the union of what each said; undefined (all layers) when one did not say.
 */
function relayWanted(o: Outlet): void {
  const s = o.track.simulcast;
  if (!s) return;
  let union: boolean[] | undefined = s.layers.map(() => false);
  for (const node of o.interest.keys()) {
    const l = o.layers.get(node);
    if (!l) {
      union = undefined;
      break;
    }
    for (let i = 0; i < union.length; i++) union[i] = union[i]! || l[i] === true;
  }
  s.relayWanted = union;
}

/**
 * The publisher's side of the relay: each local track gets a relay id; while some other
 * node has said it wants the track (and refreshed that within INTEREST_TTL_MS), every
 * packet is published once on the track's subject, whatever the number of nodes and
 * subscribers, and NATS fans it out; a video frame's packets (an audio turn's) go as one message. Nobody interested: nothing is published, so a room
 * on one node costs nothing. Keyframe requests from other nodes reach the track's own
 * throttled request, as a local subscriber's do.
 */
export class RelayOutlet {
  private readonly outlets = new Map<string, Outlet>();
  private readonly control: BusSubscription;
  private readonly sweep: NodeJS.Timeout;
  private readonly warnings: ThrottledLog;
  /** Relayed packets of tracks that have ended (the live ones count in their outlet). */
  private retiredSent = 0;
  private retiredMessages = 0;
  /** Control messages dropped as malformed or naming no track here. */
  dropped = 0;

  constructor(
    private readonly bus: Bus,
    selfId: string,
    private readonly log: Logger,
  ) {
    this.warnings = new ThrottledLog(log, 1);
    this.control = bus.subscribe(relayControlSubject(selfId), (msg) => this.onControl(msg));
    this.sweep = setInterval(() => this.expire(), 1000);
    this.sweep.unref();
  }

  /** Registers a local track; returns its relay id. */
  offer(track: PublishedTrack): string {
    const id = randomBytes(12).toString('hex');
    const subject = rtpSubject(id);
    const batch = new RelayBatcher((b) => this.bus.publish(subject, b), this.log, track.kind === 'video');
    const outlet: Outlet = {
      track,
      subject,
      interest: new Map(),
      layers: new Map(),
      send: (packet) => {
        outlet.sent++;
        batch.add(packet);
      },
      batch,
      sent: 0,
    };
    this.outlets.set(id, outlet);
    return id;
  }

  /** The track ended: nodes receiving it hear so at once. */
  withdraw(id: string, reason: string): void {
    const o = this.outlets.get(id);
    if (!o) return;
    this.outlets.delete(id);
    o.track.relay = undefined;
    this.retiredSent += o.sent;
    this.retiredMessages += o.batch.messages;
    // The last packets before the end (one connection: NATS keeps the order).
    o.batch.close();
    if (o.interest.size > 0) this.bus.publish(endSubject(id), encoder.encode(reason.slice(0, 120)));
  }

  /** Packets published on the bus so far (each once, however many nodes receive them). */
  get packetsSent(): number {
    let n = this.retiredSent;
    for (const o of this.outlets.values()) n += o.sent;
    return n;
  }

  /** Bus messages those packets went in (a batch per track and event-loop turn). */
  get messagesSent(): number {
    let n = this.retiredMessages;
    for (const o of this.outlets.values()) n += o.batch.messages;
    return n;
  }

  /** Tracks being relayed now (some node wants them). */
  get relaying(): number {
    let n = 0;
    for (const o of this.outlets.values()) if (o.interest.size > 0) n++;
    return n;
  }

  /** What a relay id has sent (for a room's stats); undefined when unknown here. */
  sentBy(id: string): { packets: number; nodes: number } | undefined {
    const o = this.outlets.get(id);
    return o && { packets: o.sent, nodes: o.interest.size };
  }

  private onControl(msg: BusMessage): void {
    const c = readRelayControl(msg.data);
    if (!c) {
      this.dropped++;
      this.warnings.warn({ subject: msg.subject }, 'sfu relay: malformed control message dropped');
      msg.respond?.('{"ok":false}');
      return;
    }
    const o = this.outlets.get(c.relay);
    switch (c.op) {
      case 'want':
        if (o) {
          if (o.interest.size === 0) this.log.debug({ relay: c.relay, node: c.node }, 'relay started');
          o.interest.set(c.node, Date.now() + INTEREST_TTL_MS);
          if (c.layers) o.layers.set(c.node, c.layers);
          else o.layers.delete(c.node);
          o.track.relay = o.send;
          relayWanted(o);
        }
        msg.respond?.(o ? '{"ok":true}' : '{"ok":false}');
        return;
      case 'drop':
        if (o?.interest.delete(c.node) && o.interest.size === 0) o.track.relay = undefined;
        o?.layers.delete(c.node);
        if (o) relayWanted(o);
        return;
      case 'pli':
        if (c.layer !== undefined && o?.track.simulcast)
          o.track.simulcast.requestLayerKeyframe(c.layer, c.force === true);
        else o?.track.requestKeyframe(c.force === true);
        return;
    }
  }

  /** Interest not refreshed in time (a node died or lost its link) lapses. */
  private expire(): void {
    const now = Date.now();
    for (const o of this.outlets.values()) {
      if (o.interest.size === 0) continue;
      for (const [node, until] of o.interest)
        if (until < now) {
          o.interest.delete(node);
          o.layers.delete(node);
        }
      if (o.interest.size === 0) o.track.relay = undefined;
      relayWanted(o);
    }
  }

  close(): void {
    clearInterval(this.sweep);
    this.control.unsubscribe();
    for (const id of [...this.outlets.keys()]) this.withdraw(id, 'server shutting down');
  }
}
