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

/**
 * A voice conversation: every member's microphone is decoded into the conversation's
 * mixer, and every member is sent the mix of everyone else (their own connection
 * excluded, their other devices included), encoded once per distinct mix. Each
 * received packet is also handed to `onSpeech` (bites).
 */
export class VoiceConference {
  private readonly members = new Map<string, Member>();
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

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  add(memberId: string, peer: VoicePeer): void {
    this.remove(memberId);
    const decoder = createOpusDecoder();
    const input = new PcmInput(undefined, 300);
    this.mixer.addInput(memberId, input);
    peer.onAudio = (opus) => {
      try {
        input.write(frameBytes(decoder.decode(opus)));
      } catch {
        // A corrupt packet: skip it (the next one decodes).
      }
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

  close(): void {
    for (const id of [...this.members.keys()]) this.remove(id);
    this.audio.close(this.mixer);
  }
}
