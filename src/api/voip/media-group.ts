import { ChorusError, isChorusError } from '../../core/errors.js';
import type { Participant } from '../../core/participant.js';
import type { Room } from '../../core/room.js';
import { asParticipantId } from '../../core/room-types.js';
import type { AudioHub } from '../../media/audio/audio-hub.js';
import type { AudioMixer } from '../../media/audio/audio-mixer.js';
import type { MixSource } from '../../media/audio/mix-source.js';
import type { PcmInput } from '../../media/audio/pcm-input.js';

/** `mic`: an upload is open; `hds` (headset): a listening stream is open. */
export type Slot = 'mic' | 'hds';

/** What the media routes use of a mixer: the node's own, or a relay to another node's. */
export type MixPort = MixSource &
  Pick<AudioMixer, 'removeInput'> & {
    addInput(id: string, input: PcmInput): void;
  };

/**
 * The slots of a call or room as the media routes see them, whichever node mixes it:
 * `MediaGroup` here, `RemoteGroup` (remote-group.ts) for a mixer on another node.
 */
export interface MediaSlots {
  readonly mixer: MixPort;
  readonly closed: boolean;
  /** Checks (and, for a mixer elsewhere, books) the slot before a stream starts. */
  reserve(id: string, slot: Slot): Promise<void>;
  occupy(id: string, slot: Slot, close: () => void): boolean;
  release(id: string, slot: Slot, close: () => void): void;
}

/** In the model, an upload is the member's microphone track and a listener receives the mix. */
const MIC = { id: 'mic', kind: 'audio', source: 'microphone' } as const;
const MIX = 'mix';

/**
 * The VOIP side of a call's or group room's Room: at most one upload and one listening
 * stream per member (a second gets "user already connected", as in the original), the
 * mixer they share, and a notice whenever someone's mic or headset turns on or off (the
 * `setAudioConf` event). Membership, capacity and closing are the room's; a stream is
 * stopped by the room's cascade (its track ended, its subscription dropped), and the
 * mixer stops when the room closes.
 */
export class MediaGroup implements MediaSlots {
  readonly mixer: AudioMixer;
  /** How to stop the stream holding each (member, slot). */
  private readonly closers = new Map<string, () => void>();
  /**
   * Frees a slot held through a node that turns out dead (set by MixerHost): true when
   * it did. A member reconnecting through another node then need not wait for the
   * cluster to declare that node gone.
   */
  reclaim: ((id: string, slot: Slot) => Promise<boolean>) | undefined;

  constructor(
    readonly room: Room,
    audio: AudioHub,
    onChange: (id: string, mic: boolean, hds: boolean) => void,
  ) {
    this.mixer = audio.open();
    const changed = (p: Participant, slot: Slot) => {
      // Ended by the model (the call ended, the room closed): stop the stream first.
      const close = this.closers.get(slotKey(p.id, slot));
      this.closers.delete(slotKey(p.id, slot));
      close?.();
      onChange(p.id, p.tracks.has(MIC.id), p.subscriptions.has(MIX));
    };
    room.events.on('trackPublished', (e) =>
      onChange(e.participant.id, true, e.participant.subscriptions.has(MIX)),
    );
    room.events.on('subscribed', (e) => onChange(e.participant.id, e.participant.tracks.has(MIC.id), true));
    room.events.on('trackEnded', (e) => changed(e.participant, 'mic'));
    room.events.on('unsubscribed', (e) => changed(e.participant, 'hds'));
    room.events.on('close', () => audio.close(this.mixer));
  }

  /** Its call ended or its room went away: no one may join it any more. */
  get closed(): boolean {
    return this.room.closed;
  }

  async reserve(id: string, slot: Slot): Promise<void> {
    if (this.has(id, slot) && !(await this.reclaim?.(id, slot)))
      throw new ChorusError('conflict', 'user already connected');
  }

  has(id: string, slot: Slot): boolean {
    const p = this.room.participant(asParticipantId(id));
    return slot === 'mic' ? p?.tracks.has(MIC.id) === true : p?.subscriptions.has(MIX) === true;
  }

  /**
   * Takes the slot, with how to close what holds it; false when taken (or closed).
   * Throws ChorusError `capacity` ("room full") when the room has no place left.
   */
  occupy(id: string, slot: Slot, close: () => void): boolean {
    if (this.room.closed || this.has(id, slot)) return false;
    let p: Participant;
    try {
      p = this.room.join(asParticipantId(id));
    } catch (err) {
      if (isChorusError(err) && err.code === 'capacity') throw new ChorusError('capacity', 'room full');
      throw err;
    }
    this.closers.set(slotKey(id, slot), close);
    if (slot === 'mic') p.publish(MIC);
    else p.subscribe(MIX);
    return true;
  }

  /** Frees the slot if `close` still holds it. */
  release(id: string, slot: Slot, close: () => void): void {
    const key = slotKey(id, slot);
    if (this.closers.get(key) !== close) return;
    this.closers.delete(key);
    const p = this.room.participant(asParticipantId(id));
    if (slot === 'mic') p?.tracks.get(MIC.id)?.close('upload ended');
    else p?.unsubscribe(MIX, 'listener left');
  }

  /** Member ids with their mic and headset state, in joining order. */
  list(): { id: string; mic: boolean; hds: boolean }[] {
    return [...this.room.participants.values()].map((p) => ({
      id: p.id,
      mic: p.tracks.has(MIC.id),
      hds: p.subscriptions.has(MIX),
    }));
  }

  get size(): number {
    return this.room.size;
  }

  ids(): string[] {
    return [...this.room.participants.keys()];
  }

  /** Closes the room: its cascade closes every stream. */
  closeAll(reason = 'closed'): void {
    this.room.close(reason);
  }
}

const slotKey = (id: string, slot: Slot): string => `${slot}\u0000${id}`;
