import type { AudioHub } from '../audio/audio-hub.js';
import { createOpusDecoder } from '../audio/audio-codec.js';
import type { AudioMixer, MixSubscription } from '../audio/audio-mixer.js';
import { frameBytes } from '../audio/pcm-frame.js';
import { PcmInput } from '../audio/pcm-input.js';
import type { VoicePeer } from './voice-peer.js';

interface Member {
  peer: VoicePeer;
  sub: MixSubscription;
}

/** Jitter buffer bound of each speaker (local or relayed), ms. */
const INPUT_MAX_MS = 300;

/**
 * Where speakers heard from elsewhere (another node's members of the same
 * conversation) go: each is one more input of the mix, heard by every local member.
 */
export interface RemoteVoices {
  /** A new remote speaker: returns where its Opus packets go (one 20 ms packet at a time). */
  addSpeaker(key: string): (opus: Uint8Array) => void;
  removeSpeaker(key: string): void;
}

/**
 * A voice conversation: every member's microphone is decoded into the conversation's
 * mixer, and every member is sent the mix of everyone else (their own connection
 * excluded, their other devices included), encoded once per distinct mix. Each
 * received packet is also handed to `onSpeech` (bites, the relay to other nodes).
 * Remote speakers (`RemoteVoices`) are mixed in the same way but are nobody's own voice
 * here, and their packets never reach `onSpeech`: their own node cuts their bites.
 */
export class VoiceConference implements RemoteVoices {
  private readonly members = new Map<string, Member>();
  private readonly remotes = new Set<string>();
  readonly mixer: AudioMixer;

  constructor(
    readonly id: string,
    private readonly audio: AudioHub,
    private readonly onSpeech: (memberId: string, opus: Buffer) => void,
  ) {
    this.mixer = audio.open();
  }

  get size(): number {
    return this.members.size;
  }

  /** Speakers of other nodes mixed in here. */
  get remoteSpeakers(): number {
    return this.remotes.size;
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  add(memberId: string, peer: VoicePeer): void {
    this.remove(memberId);
    const write = this.decodeInto(memberId);
    peer.onAudio = (opus) => {
      write(opus);
      this.onSpeech(memberId, opus);
    };
    const sub = this.mixer.listen({ onFrame: (f) => peer.send(f.opus()) }, memberId);
    this.members.set(memberId, { peer, sub });
  }

  remove(memberId: string): void {
    const m = this.members.get(memberId);
    if (!m) return;
    this.members.delete(memberId);
    m.peer.onAudio = undefined;
    m.sub.close();
    this.mixer.removeInput(memberId);
  }

  addSpeaker(key: string): (opus: Uint8Array) => void {
    if (this.members.has(key)) throw new RangeError('a remote speaker under a local member id');
    this.remotes.add(key);
    return this.decodeInto(key);
  }

  removeSpeaker(key: string): void {
    if (this.remotes.delete(key)) this.mixer.removeInput(key);
  }

  close(): void {
    for (const id of [...this.members.keys()]) this.remove(id);
    for (const key of [...this.remotes]) this.removeSpeaker(key);
    this.audio.close(this.mixer);
  }

  /** A new input of the mix under `key`, fed by decoding each packet it is given. */
  private decodeInto(key: string): (opus: Uint8Array) => void {
    const decoder = createOpusDecoder();
    const input = new PcmInput(undefined, INPUT_MAX_MS);
    this.mixer.addInput(key, input);
    return (opus) => {
      try {
        input.write(frameBytes(decoder.decode(opus)));
      } catch {
        // A corrupt packet: skip it (the next one decodes).
      }
    };
  }
}
