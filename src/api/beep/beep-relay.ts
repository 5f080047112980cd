import type { Logger } from 'pino';
import type { Bus } from '../../ports/bus/bus.js';
import type { Membership, NodeInfo } from '../../ports/membership/membership.js';
import { ThrottledLog } from '../../lib/throttled-log.js';
import type { RemoteVoices } from '../../media/webrtc/voice-conference.js';
import { RelayedConversation, type PacketCount, type RelayNode } from './relayed-conversation.js';

export interface BeepRelayTimings {
  /** How often each open conversation is checked (silent speakers, quiet nodes). */
  sweepMs: number;
  /** How often a node says it holds a conversation. */
  announceMs: number;
  /** A node not heard of for this long no longer holds the conversation (a dead node's leftovers). */
  peerExpiryMs: number;
  /** A remote speaker not heard for this long leaves the mix (comes back with its next packet). */
  silentSpeakerMs: number;
}

const TIMINGS: BeepRelayTimings = {
  sweepMs: 1000,
  announceMs: 5000,
  peerExpiryMs: 15_000,
  silentSpeakerMs: 3000,
};

/**
 * Beep's audio across nodes: members of one conversation connected to different nodes
 * hear each other. Each node mixes for its own members (mix-minus as on one node); what
 * crosses nodes is each speaker's Opus packets as received, once per speaker, on
 * `chorus.beep.conv.<id>.audio.<node>.<member>`, and who holds the conversation, on
 * `chorus.beep.conv.<id>.nodes` (see `RelayedConversation`). Opus rather than decoded
 * frames: 20 to 40 times fewer bytes through NATS, and decoding a remote speaker costs
 * each node what decoding a local one does. Bites are cut only where the speaker is
 * connected (the relayed packets go into the mix and nowhere else).
 */
export class BeepRelay implements RelayNode {
  readonly self: { node: string; instance: string };
  readonly busLog: ThrottledLog;
  private readonly open = new Set<RelayedConversation>();
  private readonly received = new Map<string, PacketCount>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly offGone: () => void;
  private readonly log: Logger;
  private sweeps = 0;
  /** Local speakers' packets published to the relay. */
  sentPackets = 0;

  constructor(
    readonly bus: Bus,
    private readonly membership: Membership,
    log: Logger,
    private readonly timings: BeepRelayTimings = TIMINGS,
  ) {
    const node = membership.selfId;
    this.self = { node, instance: membership.nodes().find((n) => n.id === node)?.instance ?? '' };
    this.log = log;
    this.busLog = new ThrottledLog(log);
    this.offGone = membership.on('nodeGone', (info) => this.nodeGone(info));
    this.sweeper = setInterval(() => this.sweep(), timings.sweepMs);
    this.sweeper.unref();
  }

  /** The conversation has members on this node: its relay, until `close`. */
  join(conversation: string, voices: RemoteVoices): RelayedConversation {
    const c = new RelayedConversation(this, conversation, voices);
    this.open.add(c);
    return c;
  }

  leave(c: RelayedConversation): void {
    if (this.open.delete(c)) c.close();
  }

  isAlive(node: string): boolean {
    return this.membership.isAlive(node);
  }

  sent(): void {
    this.sentPackets++;
  }

  receivedFrom(node: string): PacketCount {
    let c = this.received.get(node);
    if (!c) {
      c = { n: 0 };
      this.received.set(node, c);
    }
    return c;
  }

  /** Packets received from each node since start. */
  receivedByNode(): ReadonlyMap<string, PacketCount> {
    return this.received;
  }

  /** (conversation, other node) pairs: how many relays this node listens to. */
  get peerLinks(): number {
    let n = 0;
    for (const c of this.open) n += c.peerCount;
    return n;
  }

  get remoteSpeakers(): number {
    let n = 0;
    for (const c of this.open) n += c.remoteSpeakers;
    return n;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.offGone();
    for (const c of [...this.open]) this.leave(c);
  }

  private sweep(): void {
    const every = Math.max(1, Math.round(this.timings.announceMs / this.timings.sweepMs));
    const announce = ++this.sweeps % every === 0;
    const now = Date.now();
    for (const c of this.open) {
      try {
        c.refresh(now, this.timings.peerExpiryMs, this.timings.silentSpeakerMs, announce);
      } catch (err) {
        this.log.warn({ err, conversation: c.conversation }, 'beep: relay sweep failed');
      }
    }
  }

  private nodeGone(info: NodeInfo): void {
    for (const c of this.open) c.nodeGone(info.id, info.instance);
  }
}
