import type { Logger } from 'pino';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import { BiteCutter, type AudioBite } from '../../media/audio/bite-cutter.js';
import { VoiceConference } from '../../media/webrtc/voice-conference.js';
import type { VoicePeer } from '../../media/webrtc/voice-peer.js';
import type { BiteFormat, BitePublisher } from '../../core/bite-publisher.js';
import type { Claim } from './beep-identity.js';

interface Connection {
  claim: Claim;
  peer: VoicePeer;
}

/**
 * Who is connected and in which conversation. A user is in at most one conversation,
 * with all their clients (devices); a client's new connection replaces its old one.
 * Speech is cut into bites per (conversation, user, client) and published.
 */
export class BeepConversations {
  private readonly connections = new Map<string, Connection>();
  private readonly conversations = new Map<string, VoiceConference>();
  private readonly userConversation = new Map<string, string>();
  /** Which conversation each connection is in. */
  private readonly memberConversation = new Map<string, string>();
  private readonly cutter: BiteCutter;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly audio: AudioHub,
    private readonly bites: BitePublisher,
    private readonly biteFormat: BiteFormat,
    biteSeconds: number,
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
    return this.conversations.size;
  }

  /** A new connection of a client (replacing its previous one); joins the user's conversation. */
  connect(claim: Claim, peer: VoicePeer): void {
    const id = memberId(claim);
    this.connections.get(id)?.peer.close('replaced by a new connection');
    this.connections.set(id, { claim, peer });
    peer.leg.onClose(() => {
      if (this.connections.get(id)?.peer !== peer) return;
      this.connections.delete(id);
      this.leave(id);
    });
    const conversation = this.userConversation.get(claim.userid);
    if (conversation) this.enter(conversation, id, peer);
  }

  /** Moves the user (every client) from their conversation, if any, into `conversation`. */
  join(userid: string, conversation: string): void {
    this.userConversation.set(userid, conversation);
    for (const [id, c] of this.connections) {
      if (c.claim.userid !== userid) continue;
      this.leave(id);
      this.enter(conversation, id, c.peer);
    }
    this.log.info({ user: userid, conversation }, 'beep: joined conversation');
  }

  /** Members of a conversation (for tests and metrics). */
  members(conversation: string): number {
    return this.conversations.get(conversation)?.size ?? 0;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const c of [...this.connections.values()]) c.peer.close('server shutting down');
    for (const conf of this.conversations.values()) conf.close();
    this.conversations.clear();
  }

  private enter(conversation: string, id: string, peer: VoicePeer): void {
    let conf = this.conversations.get(conversation);
    if (!conf) {
      conf = new VoiceConference(conversation, this.audio, (member, opus) =>
        this.cutter.push(`${conversation}\u0000${member}`, opus, Date.now()),
      );
      this.conversations.set(conversation, conf);
    }
    conf.add(id, peer);
    this.memberConversation.set(id, conversation);
  }

  private leave(id: string): void {
    const name = this.memberConversation.get(id);
    if (name === undefined) return;
    this.memberConversation.delete(id);
    const conf = this.conversations.get(name);
    if (!conf) return;
    conf.remove(id);
    this.cutter.flush(`${name}\u0000${id}`);
    if (conf.size === 0) {
      conf.close();
      this.conversations.delete(name);
    }
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
