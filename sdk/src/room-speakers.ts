import type { LocalParticipant } from './local-participant.js';
import type { ParticipantSubscription } from './participant-subscription.js';
import type { ActiveSpeaker, SpeakerSource } from './room-events.js';
import { SpeakerLevels, sameSpeakers } from './speaker-levels.js';

interface AudioLevelStats {
  type: string;
  kind?: string;
  audioLevel?: number;
}

/**
 * The room's `activeSpeakers`: the server's `speakers` messages once any arrives; until
 * then (a server without speaker detection) levels measured here, from getStats: each
 * subscriber leg's inbound audio `audioLevel` for the others, my publisher's
 * `media-source` level for me (unless muted).
 */
export class RoomSpeakers {
  #source: SpeakerSource = 'client';
  readonly #levels = new SpeakerLevels();
  #last: ActiveSpeaker[] = [];
  #sampling = false;

  constructor(
    private readonly measureHere: boolean,
    private readonly emit: (speakers: ActiveSpeaker[]) => void,
  ) {}

  get source(): SpeakerSource {
    return this.#source;
  }

  fromServer(speakers: ActiveSpeaker[]): void {
    this.#source = 'server';
    this.#publish(speakers.map((s) => ({ identity: s.identity, level: s.level })));
  }

  /** One round of measuring (skipped while the previous one still runs, or once the server speaks). */
  sample(local: LocalParticipant, subs: readonly ParticipantSubscription[]): void {
    if (this.#source === 'server' || !this.measureHere || this.#sampling) return;
    this.#sampling = true;
    void this.#measure(local, subs)
      .then((levels) => {
        if (this.#source === 'client') this.#publish(this.#levels.update(levels));
      })
      .catch(() => undefined) // a leg closed mid-read: the next round has the new ones
      .finally(() => (this.#sampling = false));
  }

  async #measure(
    local: LocalParticipant,
    subs: readonly ParticipantSubscription[],
  ): Promise<Map<string, number>> {
    const levels = new Map<string, number>();
    const read = async (pc: RTCPeerConnection | undefined, type: string, identity: string): Promise<void> => {
      if (!pc || pc.connectionState === 'closed') return;
      (await pc.getStats()).forEach((s: AudioLevelStats) => {
        if (s.type === type && s.kind === 'audio' && typeof s.audioLevel === 'number')
          levels.set(identity, Math.max(levels.get(identity) ?? 0, s.audioLevel));
      });
    };
    const mic = local.tracks.get('audio');
    await Promise.all([
      mic && !mic.muted ? read(local.peerConnection, 'media-source', local.identity) : undefined,
      ...subs.map((s) => read(s.peerConnection, 'inbound-rtp', s.participant.identity)),
    ]);
    return levels;
  }

  #publish(speakers: ActiveSpeaker[]): void {
    if (sameSpeakers(speakers, this.#last)) return;
    this.#last = speakers;
    this.emit(speakers);
  }
}
