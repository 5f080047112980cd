import { z } from 'zod';
import { subjectToken, type Bus, type BusMessage, type BusSubscription } from '../../ports/bus/bus.js';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import type { RemoteVoices } from '../../media/webrtc/voice-conference.js';
import { busJson, readBusJson } from '../bus-json.js';

/** Largest relayed packet: one Opus packet of a voice leg (RTP payloads are smaller). */
export const MAX_RELAYED_PACKET = 1500;
/** Remote speakers one conversation takes on from the relay; more are dropped (a bound on forged subjects). */
const MAX_REMOTE_SPEAKERS = 256;
/** A member's subject token: base64url of its id (ids are at most 256 + 1 + 256 characters). */
const MEMBER_TOKEN = /^[A-Za-z0-9_-]{1,1400}$/;

/** What a node says on `chorus.beep.conv.<id>.nodes` about its members of the conversation. */
const ANNOUNCEMENT = z.object({
  node: z.string().min(1).max(256),
  instance: z.string().max(256),
  /** false: the conversation closed on that node (its last member left). */
  here: z.boolean(),
  /** The node's first word about the conversation: everyone holding it answers at once. */
  hello: z.boolean().optional(),
  /** A member of that node left the conversation (its subject token). */
  left: z.string().max(1400).optional(),
});
type Announcement = z.infer<typeof ANNOUNCEMENT>;

/** Per node: packets received from it (kept by the relay across conversations). */
export interface PacketCount {
  n: number;
}

/** What a conversation needs of the node-wide relay. */
export interface RelayNode {
  readonly bus: Bus;
  readonly self: { node: string; instance: string };
  readonly busLog: ThrottledLog;
  /** A local speaker's packet went out (once, whoever hears it). */
  sent(): void;
  /** The counter of packets received from `node`. */
  receivedFrom(node: string): PacketCount;
  /** Whether membership knows `node` as a live node of the cluster. */
  isAlive(node: string): boolean;
}

interface Peer {
  node: string;
  instance: string;
  /** Dropped: packets still in flight are ignored. */
  gone: boolean;
  heardAt: number;
  sub: BusSubscription;
  /** Its speakers, by subject. */
  speakers: Map<string, RemoteSpeaker>;
  received: PacketCount;
}

interface RemoteSpeaker {
  key: string;
  write: (opus: Uint8Array) => void;
  heardAt: number;
}

/** The subjects of one conversation: `chorus.beep.conv.<id>.nodes` and `….audio.<node>.<member>`. */
export function conversationSubjects(conversation: string): { nodes: string; audio: string } {
  const base = `chorus.beep.conv.${subjectToken(conversation)}`;
  return { nodes: `${base}.nodes`, audio: `${base}.audio` };
}

/** A member id as one subject token. */
export function memberToken(memberId: string): string {
  return Buffer.from(memberId, 'utf8').toString('base64url');
}

/**
 * One conversation's share of the relay on this node, open while the conversation has
 * members here. It says so on the conversation's `nodes` subject (at once, then every
 * few seconds); every other node holding the conversation answers a first word at once,
 * so both know of each other within a round trip. Each local speaker's packets are
 * published once, on the speaker's own subject, and only while some other node holds
 * the conversation (one node alone publishes nothing); NATS delivers them once to each
 * node that subscribed to this node's speakers. Each remote speaker is one more input of
 * the local mix (`RemoteVoices`), removed when its node says it left, when it falls
 * silent, when its node closes the conversation, stops announcing or is gone.
 */
export class RelayedConversation {
  private readonly peers = new Map<string, Peer>();
  /** Each local member's audio subject, made once. */
  private readonly localSubjects = new Map<string, string>();
  private readonly subjects: { nodes: string; audio: string };
  private readonly announcements: BusSubscription;
  private closed = false;

  constructor(
    private readonly relay: RelayNode,
    readonly conversation: string,
    private readonly voices: RemoteVoices,
  ) {
    this.subjects = conversationSubjects(conversation);
    this.announcements = relay.bus.subscribe(this.subjects.nodes, (m) => this.onAnnouncement(m));
    // Subscribed first: whoever answers this hello is heard.
    this.announce({ hello: true });
  }

  /** Other nodes holding the conversation. */
  get peerCount(): number {
    return this.peers.size;
  }

  get remoteSpeakers(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.speakers.size;
    return n;
  }

  /** A local member's packet (the hot path): published once when another node listens. */
  send(memberId: string, opus: Buffer): void {
    if (this.peers.size === 0 || opus.length > MAX_RELAYED_PACKET) return;
    let subject = this.localSubjects.get(memberId);
    if (subject === undefined) {
      subject = `${this.subjects.audio}.${subjectToken(this.relay.self.node)}.${memberToken(memberId)}`;
      this.localSubjects.set(memberId, subject);
    }
    // Not copied: each packet from the WebRTC stack is its own buffer, never reused, so
    // the NATS client may hold it until it flushes.
    this.relay.bus.publish(subject, opus);
    this.relay.sent();
  }

  /** A local member left: the other nodes take their voice out now rather than on silence. */
  memberLeft(memberId: string): void {
    this.localSubjects.delete(memberId);
    if (this.peers.size > 0) this.announce({ left: memberToken(memberId) });
  }

  /** Every few seconds: say we are here; forget nodes that stopped saying so, and silent speakers. */
  refresh(now: number, peerExpiryMs: number, silentSpeakerMs: number, announce: boolean): void {
    if (announce) this.announce({});
    for (const [node, peer] of this.peers) {
      if (now - peer.heardAt > peerExpiryMs) {
        this.dropPeer(node);
        continue;
      }
      for (const [subject, s] of peer.speakers)
        if (now - s.heardAt > silentSpeakerMs) this.dropSpeaker(peer, subject);
    }
  }

  /** A node is gone (membership): its speakers go at once. */
  nodeGone(node: string, instance: string): void {
    if (this.peers.get(node)?.instance === instance) this.dropPeer(node);
  }

  /** The last local member left: the other nodes stop sending here. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.announcements.unsubscribe();
    for (const node of [...this.peers.keys()]) this.dropPeer(node);
    this.announce({ here: false });
  }

  private announce(extra: Partial<Announcement>): void {
    const { node, instance } = this.relay.self;
    this.relay.bus.publish(this.subjects.nodes, busJson({ node, instance, here: true, ...extra }));
  }

  private onAnnouncement(msg: BusMessage): void {
    if (this.closed) return;
    const a = readBusJson(
      ANNOUNCEMENT,
      msg.data,
      { surface: 'beep', subject: msg.subject },
      this.relay.busLog,
    );
    if (!a || a.node === this.relay.self.node) return;
    let peer = this.peers.get(a.node);
    if (!peer && a.here && !this.relay.isAlive(a.node)) {
      // Not (or not yet) a member of the cluster: a forged name, or a node this one has
      // not heard of yet, which its next announcement brings in. Each peer costs a
      // subscription, so only live nodes get one.
      this.relay.busLog.warn(
        { subject: msg.subject, node: a.node },
        'beep: announcement of an unknown node, dropped',
      );
      return;
    }
    if (!a.here) {
      if (peer?.instance === a.instance) this.dropPeer(a.node);
      return;
    }
    if (peer && peer.instance !== a.instance) {
      // Restarted under the same id: what the old process sent is over.
      this.dropPeer(a.node);
      peer = undefined;
    }
    if (!peer) {
      peer = this.addPeer(a.node, a.instance);
      // A newcomer hears from everyone at once; a known node's periodic word needs no answer.
      if (a.hello) this.announce({});
    } else if (a.hello) {
      this.announce({});
    }
    peer.heardAt = Date.now();
    if (a.left !== undefined) {
      const subject = `${this.subjects.audio}.${subjectToken(a.node)}.${a.left}`;
      this.dropSpeaker(peer, subject);
    }
  }

  private addPeer(node: string, instance: string): Peer {
    const speakers = new Map<string, RemoteSpeaker>();
    const prefix = `${this.subjects.audio}.${subjectToken(node)}.`;
    const peer: Peer = {
      node,
      instance,
      gone: false,
      heardAt: Date.now(),
      speakers,
      received: this.relay.receivedFrom(node),
      sub: this.relay.bus.subscribe(`${prefix}*`, (m) => this.onAudio(peer, prefix, m)),
    };
    this.peers.set(node, peer);
    return peer;
  }

  /** A remote speaker's packet (the hot path): into that speaker's input of the mix. */
  private onAudio(peer: Peer, prefix: string, msg: BusMessage): void {
    if (peer.gone) return;
    const data = msg.data;
    if (data.length === 0 || data.length > MAX_RELAYED_PACKET) {
      this.relay.busLog.warn(
        { subject: msg.subject, bytes: data.length },
        'beep: relayed packet of a bad size, dropped',
      );
      return;
    }
    let speaker = peer.speakers.get(msg.subject);
    if (!speaker) {
      speaker = this.addSpeaker(peer, prefix, msg.subject);
      if (!speaker) return;
    }
    speaker.heardAt = Date.now();
    peer.received.n++;
    speaker.write(data);
  }

  private addSpeaker(peer: Peer, prefix: string, subject: string): RemoteSpeaker | undefined {
    const token = subject.slice(prefix.length);
    if (!MEMBER_TOKEN.test(token)) {
      this.relay.busLog.warn({ subject }, 'beep: relayed audio for no member, dropped');
      return undefined;
    }
    if (this.remoteSpeakers >= MAX_REMOTE_SPEAKERS) {
      this.relay.busLog.warn({ subject }, 'beep: too many remote speakers in a conversation, dropped');
      return undefined;
    }
    // \u0001 starts no member id (ids hold no control characters), so no local member clashes.
    const key = `\u0001${peer.node}\u0000${token}`;
    const speaker: RemoteSpeaker = { key, write: this.voices.addSpeaker(key), heardAt: Date.now() };
    peer.speakers.set(subject, speaker);
    return speaker;
  }

  private dropSpeaker(peer: Peer, subject: string): void {
    const s = peer.speakers.get(subject);
    if (!s) return;
    peer.speakers.delete(subject);
    this.voices.removeSpeaker(s.key);
  }

  private dropPeer(node: string): void {
    const peer = this.peers.get(node);
    if (!peer) return;
    this.peers.delete(node);
    peer.gone = true;
    peer.sub.unsubscribe();
    for (const subject of [...peer.speakers.keys()]) this.dropSpeaker(peer, subject);
  }
}
