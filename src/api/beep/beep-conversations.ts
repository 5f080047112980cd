import type { Logger } from 'pino';
import type { Room } from '../../core/room.js';
import type { RoomRegistry } from '../../core/room-registry.js';
import { asParticipantId, asRoomId } from '../../core/room-types.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import { BiteCutter, type AudioBite } from '../../media/audio/bite-cutter.js';
import { VoiceConference } from '../../media/webrtc/voice-conference.js';
import type { VoicePeer } from '../../media/webrtc/voice-peer.js';
import type { BiteFormat, BitePublisher } from '../../core/bite-publisher.js';
import type { Claim } from './beep-identity.js';
import type { BeepRelay } from './beep-relay.js';

interface Connection {
  claim: Claim;
  peer: VoicePeer;
}

/** Told when a user's connections on this node come and go (the cluster keeps the record). */
export interface BeepUserListener {
  /** Each new connection: it enters the user's conversation once that is known. */
  connected(claim: Claim): void;
  /** The user's last connection on this node closed. */
  allGone(userid: string): void;
}

/** Each connection (a user's client) is a participant: its voice in, the mix out. */
const VOICE = { id: 'voice', kind: 'audio', source: 'microphone' } as const;

/**
 * Who is connected on this node and in which conversation. A user is in at most one
 * conversation, with all their clients (devices); a client's new connection replaces its
 * old one. Which conversation that is lives in the store, across nodes (`BeepCluster`,
 * told through the `BeepUserListener`), which calls `place` to move the connections.
 * Conversations are rooms of the engine's model (kind `conversation`, closed when
 * empty); each has a VoiceConference that follows it: a participant who leaves is taken
 * out of the mix, and the mixer stops when the room closes. Speech is cut into bites
 * per (conversation, user, client) and published.
 */
export class BeepConversations {
  private readonly connections = new Map<string, Connection>();
  /** The media of each open conversation room. */
  private readonly conferences = new Map<Room, VoiceConference>();
  /** Connections of each user on this node. */
  private readonly userConnections = new Map<string, number>();
  private listener: BeepUserListener | undefined;
  /** Which conversation each connection is in. */
  private readonly memberConversation = new Map<string, string>();
  private readonly cutter: BiteCutter;
  private readonly sweeper: NodeJS.Timeout;
  /** Speaker packets received from this node's clients (each is relayed at most once). */
  voicePackets = 0;

  constructor(
    private readonly rooms: RoomRegistry,
    private readonly audio: AudioHub,
    private readonly bites: BitePublisher,
    private readonly biteFormat: BiteFormat,
    biteSeconds: number,
    private readonly relay: BeepRelay,
    private readonly log: Logger,
  ) {
    this.cutter = new BiteCutter(biteSeconds * 1000, (b) => this.publish(b));
    this.sweeper = setInterval(() => this.cutter.sweep(Date.now()), 250);
    this.sweeper.unref();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get conversationCount(): number {
    return this.rooms.count('conversation');
  }

  setUserListener(listener: BeepUserListener): void {
    this.listener = listener;
  }

  /** A new connection of a client (replacing its previous one); the listener places it. */
  connect(claim: Claim, peer: VoicePeer): void {
    const id = memberId(claim);
    const old = this.connections.get(id);
    if (old) {
      this.connections.delete(id);
      this.leave(id);
      old.peer.close('replaced by a new connection');
    } else {
      this.userConnections.set(claim.userid, (this.userConnections.get(claim.userid) ?? 0) + 1);
    }
    this.connections.set(id, { claim, peer });
    peer.leg.onClose(() => {
      if (this.connections.get(id)?.peer !== peer) return;
      this.connections.delete(id);
      this.leave(id);
      const left = (this.userConnections.get(claim.userid) ?? 1) - 1;
      if (left > 0) this.userConnections.set(claim.userid, left);
      else {
        this.userConnections.delete(claim.userid);
        this.listener?.allGone(claim.userid);
      }
    });
    this.listener?.connected(claim);
  }

  /** Whether any of the user's connections is on this node. */
  holds(userid: string): boolean {
    return this.userConnections.has(userid);
  }

  /** Moves the user's connections on this node that are elsewhere into `conversation`. */
  place(userid: string, conversation: string): void {
    for (const [id, c] of this.connections) {
      if (c.claim.userid !== userid || this.memberConversation.get(id) === conversation) continue;
      this.leave(id);
      this.enter(conversation, id, c.peer);
      this.log.debug({ user: userid, client: c.claim.clientid, conversation }, 'beep: connection placed');
    }
  }

  /** Closes a client's connection here (its user connected it again on another node). */
  drop(userid: string, clientid: string): void {
    this.connections.get(memberId({ userid, clientid }))?.peer.close('replaced by a new connection');
  }

  /** Members of a conversation on this node (for tests and metrics). */
  members(conversation: string): number {
    return this.rooms.get('conversation', conversation)?.size ?? 0;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const c of [...this.connections.values()]) c.peer.close('server shutting down');
    this.rooms.closeAll('server shutting down', 'conversation');
  }

  private enter(conversation: string, id: string, peer: VoicePeer): void {
    const room = this.rooms.get('conversation', conversation) ?? this.open(conversation);
    const participant = room.join(asParticipantId(id));
    participant.publish(VOICE);
    participant.subscribe('mix');
    this.conferences.get(room)?.add(id, peer);
    this.memberConversation.set(id, conversation);
  }

  /** A new conversation room and the voice conference that follows it. */
  private open(conversation: string): Room {
    const room = this.rooms.create(asRoomId(conversation), {
      kind: 'conversation',
      closeWhenEmpty: true,
      metadata: null,
    });
    // Each member's bite key, made once rather than per packet.
    const biteKeys = new Map<string, string>();
    const conf = new VoiceConference(conversation, this.audio, (member, opus) => {
      this.voicePackets++;
      let key = biteKeys.get(member);
      if (key === undefined) biteKeys.set(member, (key = `${conversation}\u0000${member}`));
      // Only here, where the speaker is connected: relayed audio is never cut again.
      this.cutter.push(key, opus, Date.now());
      relayed.send(member, opus);
    });
    // The relay to the conversation's members on other nodes, made with the conference.
    const relayed = this.relay.join(conversation, conf);
    this.conferences.set(room, conf);
    room.events.on('participantLeft', (e) => {
      conf.remove(e.participant.id);
      biteKeys.delete(e.participant.id);
      this.cutter.flush(`${conversation}\u0000${e.participant.id}`);
      relayed.memberLeft(e.participant.id);
    });
    room.events.on('close', () => {
      this.conferences.delete(room);
      this.relay.leave(relayed);
      conf.close();
    });
    return room;
  }

  private leave(id: string): void {
    const name = this.memberConversation.get(id);
    if (name === undefined) return;
    this.memberConversation.delete(id);
    // The room's cascade takes the member out of the mix; the last one closes it.
    this.rooms.get('conversation', name)?.leave(asParticipantId(id), 'left');
  }

  private publish(bite: AudioBite): void {
    const [conversation, user, client] = bite.speaker.split('\u0000') as [string, string, string];
    // Through the engine, which never waits: while NATS is away it drops and counts.
    const { startMs, durationMs, packets } = bite;
    this.bites.publish({ conversation, user, client, startMs, durationMs, packets }, this.biteFormat);
  }
}

function memberId(c: Claim): string {
  return `${c.userid}\u0000${c.clientid}`;
}
