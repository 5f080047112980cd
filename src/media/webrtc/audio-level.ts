import { findHeaderExtension, type ExtensionSpan } from './rtp.js';

/** The client-to-mixer audio level header extension (RFC 6464). */
export const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';

/** Amplitude (0 to 1) of each level RFC 6464 can carry: 0 to 127 dB below overload. */
const AMPLITUDE = Float64Array.from({ length: 128 }, (_, dbov) => 10 ** (-dbov / 20));

/**
 * What one audio track's packets say of its loudness (RFC 6464: each packet's level in
 * -dBov, 0 loudest, 127 silence), summed between two reads. Read on every audio packet,
 * so it allocates nothing: one lookup and two additions.
 */
export class AudioLevelMeter {
  private readonly span: ExtensionSpan = { offset: 0, length: 0 };
  private amplitudeSum = 0;
  private packets = 0;
  /** The most recent level, in -dBov (127 until a packet carried one). */
  lastDbov = 127;

  constructor(
    /** The extension's id, as negotiated with the publisher. */
    readonly extensionId: number,
  ) {}

  /** Reads the level of one RTP packet, if it carries one. */
  observe(packet: Buffer): void {
    if (!findHeaderExtension(packet, this.extensionId, this.span)) return;
    const dbov = packet[this.span.offset]! & 0x7f;
    this.lastDbov = dbov;
    this.amplitudeSum += AMPLITUDE[dbov]!;
    this.packets++;
  }

  /**
   * The mean amplitude (0 to 1) of the packets since the last call, and starts again. No
   * packet at all (a muted or DTX-silent publisher sends none) reads as silence.
   */
  take(): number {
    const mean = this.packets > 0 ? this.amplitudeSum / this.packets : 0;
    this.amplitudeSum = 0;
    this.packets = 0;
    return mean;
  }
}

/** An amplitude (0 to 1) in dB below overload, 0 to 127. */
export function amplitudeToDbov(amplitude: number): number {
  if (amplitude <= 0) return 127;
  return Math.min(127, Math.max(0, -20 * Math.log10(amplitude)));
}
