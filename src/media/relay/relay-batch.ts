import type { Logger } from 'pino';

/**
 * The relay's wire format: the RTP packets of one track handed over in one event-loop turn
 * travel as one bus message, each packet behind its length (16 bits, big-endian):
 * `len | packet | len | packet ...`. One NATS message per turn instead of one per packet
 * is where the relay's per-packet cost goes (the client's PUB framing and write on the
 * publisher's node; parsing, subject lookup and a callback per message on every receiving
 * node).
 */

/** A batch is sent at once when it holds this many packets... */
export const MAX_BATCH_PACKETS = 64;
/** ...or this many bytes (well under NATS's 1 MiB default max_payload). */
export const MAX_BATCH_BYTES = 60_000;

/** Encodes packets as one batch: a single allocation, the packets copied behind their lengths. */
export function encodeRelayBatch(packets: readonly Uint8Array[]): Buffer {
  let bytes = 0;
  for (let i = 0; i < packets.length; i++) bytes += 2 + packets[i]!.length;
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    out.writeUInt16BE(p.length, at);
    out.set(p, at + 2);
    at += 2 + p.length;
  }
  return out;
}

/**
 * Calls `onPacket` with each packet of a batch, in order, as a view of `batch` (no copy:
 * the receiver owns the message's bytes). Returns false when the batch is malformed (empty,
 * or a length running past its end); the packets before that point were delivered, the
 * rest is dropped. Untrusted input: never throws on any bytes.
 */
export function readRelayBatch(batch: Uint8Array, onPacket: (packet: Buffer) => void): boolean {
  const end = batch.length;
  if (end === 0) return false;
  const buf = batch.buffer;
  const base = batch.byteOffset;
  let at = 0;
  while (at < end) {
    if (at + 2 > end) return false;
    const len = (batch[at]! << 8) | batch[at + 1]!;
    at += 2;
    if (len === 0 || at + len > end) return false;
    onPacket(Buffer.from(buf, base + at, len));
    at += len;
  }
  return true;
}

/**
 * How long a video batch waits for its frame's last packet (the RTP marker bit) when that
 * packet does not come (lost on the way in, or a sender that never sets it). A sender's pacer
 * spreads a frame over a few milliseconds (Chromium: up to ~15 ms at 1-2 Mbit/s).
 */
export const FRAME_HOLD_MS = 20;

/**
 * Collects one track's packets and publishes them as one bus message.
 *
 * - **Video** (`frameAligned`): a batch ends with the frame's last packet, the one with the
 *   RTP marker bit (or when full, or FRAME_HOLD_MS after its first packet). A receiver
 *   can decode a frame only once its last packet is in, so holding the earlier ones until
 *   then adds nothing to when the frame can be shown, and it turns a frame's 5-10 packets,
 *   each arriving in its own native callback and event-loop turn, into one NATS message:
 *   one write on this node and one wake-up, parse and callback on every receiving node
 *   instead of one per packet (measured in BENCHMARKS.md, "SFU across nodes").
 * - **Audio** (one packet is one frame; its marker bit means "talk spurt starts"): the
 *   packets of one event-loop turn go together, flushed once the turn's I/O is done.
 *
 * Order is kept. The packets are referenced until the flush (the publishing track does not
 * write to a packet after handing it over, as the bus client held it until its own flush).
 */
export class RelayBatcher {
  private readonly pending: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  /** A video batch is open and its hold timer armed. */
  private holding = false;
  /** Made on the first held packet, then re-armed with refresh(): no allocation per frame. */
  private holdTimer: NodeJS.Timeout | undefined;
  /** Bus messages sent (each one batch). */
  messages = 0;

  constructor(
    private readonly publish: (batch: Buffer) => void,
    private readonly log: Logger,
    private readonly frameAligned = false,
  ) {}

  add(packet: Buffer): void {
    // Longer than the length field (no RTP packet on a UDP path is): not relayable.
    if (packet.length > 0xffff) return;
    this.pending.push(packet);
    this.bytes += 2 + packet.length;
    if (this.pending.length >= MAX_BATCH_PACKETS || this.bytes >= MAX_BATCH_BYTES) {
      this.flush();
    } else if (this.frameAligned) {
      if (packet.length > 1 && (packet[1]! & 0x80) !== 0) this.flush();
      else if (!this.holding) this.hold();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onFlushDue);
    }
  }

  /** Publishes what is pending now (the track ending sends its last packets first). */
  flush(): void {
    this.holding = false;
    if (this.pending.length === 0) return;
    const batch = encodeRelayBatch(this.pending);
    this.pending.length = 0;
    this.bytes = 0;
    this.messages++;
    this.publish(batch);
  }

  /** The track ended: nothing is held any more (the timer would only find an empty batch). */
  close(): void {
    this.flush();
    if (this.holdTimer) clearTimeout(this.holdTimer);
  }

  private hold(): void {
    this.holding = true;
    if (this.holdTimer) this.holdTimer.refresh();
    else {
      this.holdTimer = setTimeout(this.onFlushDue, FRAME_HOLD_MS);
      this.holdTimer.unref();
    }
  }

  /**
   * Made once: the deferred flush (end of turn for audio, hold expired for video), guarded
   * (a throw here would end the process). A hold timer that fires after its batch was
   * flushed by a marker finds nothing pending, or a newer batch that re-armed it.
   */
  private readonly onFlushDue = (): void => {
    this.scheduled = false;
    try {
      this.flush();
    } catch (err) {
      this.log.error({ err }, 'sfu relay: batch not published');
    }
  };
}
