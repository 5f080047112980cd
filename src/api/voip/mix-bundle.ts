/**
 * One tick of a relayed mixer: the full mix's Opus packet, and the packets of the
 * members whose own mix (everyone but them) differs from it this tick (they are
 * speaking). A member not listed hears the full mix, as on the owner's mixer. So each
 * distinct mix crosses the bus once per tick, encoded once, whatever number of nodes
 * and listeners hear it.
 *
 * Binary, big-endian: u8 version (1) | u32 seq | u16 full length | full packet |
 * u16 count | count × (u16 id length | id, UTF-8 | u16 packet length | packet).
 */
export interface MixBundle {
  seq: number;
  full: Uint8Array;
  /** Member id -> their own mix's packet (views into the message, valid while it is). */
  readonly own: Map<string, Uint8Array>;
}

const VERSION = 1;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Builds bundles in one growing scratch buffer and hands out each as its own copy: the
 * NATS client keeps a reference to what it publishes until it flushes, and the mix
 * clock may run several ticks (so several bundles) before that.
 */
export class MixBundleWriter {
  private buf = Buffer.alloc(4096);
  private at = 0;
  private count = 0;
  private countAt = 0;

  begin(seq: number, full: Uint8Array): void {
    this.at = 0;
    this.ensure(9 + full.length);
    this.buf.writeUInt8(VERSION, 0);
    this.buf.writeUInt32BE(seq >>> 0, 1);
    this.buf.writeUInt16BE(full.length, 5);
    this.buf.set(full, 7);
    this.countAt = 7 + full.length;
    this.at = this.countAt + 2;
    this.count = 0;
  }

  /** Adds a member's own mix; ids past 1 KiB are skipped (they hear the full mix). */
  add(id: string, packet: Uint8Array): void {
    const idBytes = Buffer.byteLength(id);
    if (idBytes > 1024 || this.count === 0xffff) return;
    this.ensure(4 + idBytes + packet.length);
    this.buf.writeUInt16BE(idBytes, this.at);
    this.buf.write(id, this.at + 2, 'utf8');
    this.at += 2 + idBytes;
    this.buf.writeUInt16BE(packet.length, this.at);
    this.buf.set(packet, this.at + 2);
    this.at += 2 + packet.length;
    this.count++;
  }

  /** The bundle (a copy of its bytes). */
  end(): Uint8Array {
    this.buf.writeUInt16BE(this.count, this.countAt);
    // A copy: Buffer's own slice() would be a view.
    return new Uint8Array(this.buf.subarray(0, this.at));
  }

  private ensure(more: number): void {
    if (this.at + more <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.at + more));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}

/**
 * Reads `data` into `out` (reused); false when it is not a well-formed bundle (a bus
 * payload is untrusted: any length may lie).
 */
export function readMixBundle(data: Uint8Array, out: MixBundle): boolean {
  out.own.clear();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.byteLength;
  if (n < 9 || view.getUint8(0) !== VERSION) return false;
  out.seq = view.getUint32(1);
  const fullLen = view.getUint16(5);
  let at = 7 + fullLen;
  if (fullLen === 0 || at + 2 > n) return false;
  out.full = data.subarray(7, at);
  const count = view.getUint16(at);
  at += 2;
  try {
    for (let i = 0; i < count; i++) {
      if (at + 2 > n) return false;
      const idLen = view.getUint16(at);
      if (idLen === 0 || at + 2 + idLen + 2 > n) return false;
      const id = utf8.decode(data.subarray(at + 2, at + 2 + idLen));
      at += 2 + idLen;
      const len = view.getUint16(at);
      if (len === 0 || at + 2 + len > n) return false;
      out.own.set(id, data.subarray(at + 2, at + 2 + len));
      at += 2 + len;
    }
  } catch {
    return false; // not UTF-8
  }
  return at === n;
}

export function emptyMixBundle(): MixBundle {
  return { seq: 0, full: new Uint8Array(0), own: new Map() };
}
