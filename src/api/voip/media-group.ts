import type { AudioMixer } from '../../media/audio/audio-mixer.js';

/** `mic`: an upload is open; `hds` (headset): a listening stream is open. */
export type Slot = 'mic' | 'hds';

interface Member {
  mic?: () => void;
  hds?: () => void;
}

/**
 * The people of one call or room and their media: at most one upload and one listening
 * stream each (a second gets "user already connected", as in the original), the mixer
 * they share, and a notice whenever someone's mic or headset turns on or off (the
 * `setAudioConf` event).
 */
export class MediaGroup {
  private readonly members = new Map<string, Member>();
  /** Set when its call ended or its room went away: no one may join it any more. */
  closed = false;

  constructor(
    readonly mixer: AudioMixer,
    private readonly onChange: (id: string, mic: boolean, hds: boolean) => void,
  ) {}

  has(id: string, slot: Slot): boolean {
    return this.members.get(id)?.[slot] !== undefined;
  }

  /** Takes the slot, with how to close what holds it; false when taken (or closed). */
  occupy(id: string, slot: Slot, close: () => void): boolean {
    if (this.closed) return false;
    let m = this.members.get(id);
    if (m?.[slot]) return false;
    if (!m) this.members.set(id, (m = {}));
    m[slot] = close;
    this.onChange(id, m.mic !== undefined, m.hds !== undefined);
    return true;
  }

  /** Frees the slot if `close` still holds it. */
  release(id: string, slot: Slot, close: () => void): void {
    const m = this.members.get(id);
    if (!m || m[slot] !== close) return;
    delete m[slot];
    if (!m.mic && !m.hds) this.members.delete(id);
    this.onChange(id, m.mic !== undefined, m.hds !== undefined);
  }

  /** Member ids with their mic and headset state, in joining order. */
  list(): { id: string; mic: boolean; hds: boolean }[] {
    return [...this.members].map(([id, m]) => ({ id, mic: m.mic !== undefined, hds: m.hds !== undefined }));
  }

  get size(): number {
    return this.members.size;
  }

  ids(): string[] {
    return [...this.members.keys()];
  }

  /** Closes every stream (each then releases its slot). */
  closeAll(): void {
    this.closed = true;
    for (const m of [...this.members.values()]) {
      m.mic?.();
      m.hds?.();
    }
  }
}
