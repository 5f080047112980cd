/** One speaker's audio over one window: the Opus packets as received. */
export interface AudioBite {
  speaker: string;
  /** Start of the window, Unix ms (a multiple of the bite length). */
  startMs: number;
  /** Audio in the bite, ms (from the packets' own frame sizes). */
  durationMs: number;
  packets: Uint8Array[];
}

/**
 * Cuts each speaker's packets into bites aligned to wall-clock multiples of `chunkMs`,
 * so one speaker never has two bites with the same start. A bite is emitted when its
 * window has passed (at the speaker's next packet, or at `sweep`), or at `flush`.
 */
export class BiteCutter {
  private readonly open = new Map<string, AudioBite>();

  constructor(
    private readonly chunkMs: number,
    private readonly emit: (bite: AudioBite) => void,
  ) {}

  push(speaker: string, packet: Uint8Array, nowMs: number): void {
    const start = Math.floor(nowMs / this.chunkMs) * this.chunkMs;
    let bite = this.open.get(speaker);
    if (bite && bite.startMs !== start) {
      this.emit(bite);
      bite = undefined;
    }
    if (!bite) {
      bite = { speaker, startMs: start, durationMs: 0, packets: [] };
      this.open.set(speaker, bite);
    }
    bite.packets.push(Uint8Array.from(packet));
    bite.durationMs += opusPacketMs(packet);
  }

  /** Emits every bite whose window has ended (speakers who went quiet). */
  sweep(nowMs: number): void {
    for (const [speaker, bite] of this.open) {
      if (bite.startMs + this.chunkMs <= nowMs) {
        this.open.delete(speaker);
        this.emit(bite);
      }
    }
  }

  /** Emits what a speaker has so far (they left). */
  flush(speaker: string): void {
    const bite = this.open.get(speaker);
    this.open.delete(speaker);
    if (bite) this.emit(bite);
  }
}

/** Duration of an Opus packet from its TOC byte (RFC 6716 section 3.1), in ms. */
export function opusPacketMs(packet: Uint8Array): number {
  if (packet.length === 0) return 0;
  const toc = packet[0]!;
  const config = toc >> 3;
  const frameMs =
    config < 12
      ? [10, 20, 40, 60][config & 3]!
      : config < 16
        ? [10, 20][config & 1]!
        : [2.5, 5, 10, 20][config & 3]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code < 3 ? 2 : packet.length > 1 ? packet[1]! & 0x3f : 0;
  return frameMs * frames;
}
