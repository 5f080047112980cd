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
 * Collects one track's packets during an event-loop turn and publishes them as one batch
 * once the turn's I/O is done (setImmediate), or at once when the batch is full: a packet
 * waits at most for the rest of the turn it arrived in, and order is kept. The packets are
 * referenced until then (the publishing track does not write to a packet after handing it
 * over, as the bus client held it until its own flush before).
 */
export class RelayBatcher {
  private readonly pending: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  /** Bus messages sent (each one batch). */
  messages = 0;

  constructor(
    private readonly publish: (batch: Buffer) => void,
    private readonly log: Logger,
  ) {}

  add(packet: Buffer): void {
    // Longer than the length field (no RTP packet on a UDP path is): not relayable.
    if (packet.length > 0xffff) return;
    this.pending.push(packet);
    this.bytes += 2 + packet.length;
    if (this.pending.length >= MAX_BATCH_PACKETS || this.bytes >= MAX_BATCH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onTurnEnd);
    }
  }

  /** Publishes what is pending now (the track ending sends its last packets first). */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch = encodeRelayBatch(this.pending);
    this.pending.length = 0;
    this.bytes = 0;
    this.messages++;
    this.publish(batch);
  }

  /** Made once: the per-turn flush, guarded (a throw here would end the process). */
  private readonly onTurnEnd = (): void => {
    this.scheduled = false;
    try {
      this.flush();
    } catch (err) {
      this.log.error({ err }, 'sfu relay: batch not published');
    }
  };
}
