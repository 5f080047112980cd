import { RTCP_RTPFB } from './rtp.js';

/** Sequence numbers waiting for a retransmission at once; older ones give way. */
export const NACK_MAX_MISSING = 256;
/** A jump past this many packets is a restarted or switched stream, not loss. */
export const NACK_MAX_GAP = 1000;
/** NACKs sent for one packet before it is given up. */
export const NACK_MAX_TRIES = 3;
/**
 * Wait before the first NACK (a packet a few ms late is reordering, not loss) and between
 * tries: about one round trip on a continental path. The SFU cannot measure the
 * publisher's round trip (the publisher receives no media from it to report on), so it
 * is fixed; three tries span 20 + 2 x 100 ms, within a video jitter buffer's wait.
 */
export const NACK_FIRST_DELAY_MS = 20;
export const NACK_RETRY_MS = 100;
/** NACK FCIs (PID + bitmask) in one RTCP packet at most. */
const MAX_FCI = 32;

/**
 * Watches one inbound stream's sequence numbers and says which packets to NACK (generic
 * NACK, RFC 4585 6.2.1): a gap becomes missing entries, each NACKed after a short delay
 * and again up to NACK_MAX_TRIES times, until it arrives (late, or as a retransmission).
 * Memory is fixed: at most NACK_MAX_MISSING entries in typed arrays, the oldest dropped
 * first. Per packet it allocates nothing.
 */
export class NackGenerator {
  private readonly seqs = new Uint16Array(NACK_MAX_MISSING);
  private readonly tries = new Uint8Array(NACK_MAX_MISSING);
  private readonly dueAt = new Float64Array(NACK_MAX_MISSING);
  /** Ring of missing entries: `head` the oldest, `count` in use. */
  private head = 0;
  private count = 0;
  private highest = -1;
  /** Earliest `dueAt` of any entry (Infinity: none), so `due` is one comparison mostly. */
  private nextDue = Infinity;
  /** Packets NACKed (each try counts), and given up after the last try. */
  nacked = 0;
  givenUp = 0;

  constructor(private readonly packet: Buffer = Buffer.alloc(12 + 4 * MAX_FCI)) {}

  /** Packets still waiting to be NACKed again. */
  get missing(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++)
      if (this.tries[(this.head + i) % NACK_MAX_MISSING]! < NACK_MAX_TRIES) n++;
    return n;
  }

  /** A packet with sequence number `seq` arrived at `now` (ms). */
  received(seq: number, now: number): void {
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffff) return;
    if (this.highest < 0) {
      this.highest = seq;
      return;
    }
    const delta = (seq - this.highest) & 0xffff;
    if (delta === 0) return; // duplicate of the newest
    if (delta < 0x8000) {
      if (delta > NACK_MAX_GAP) {
        this.clear(); // a new stream: what the old one missed will never come
      } else {
        for (let s = this.highest + 1, n = 1; n < delta; s++, n++) this.add(s & 0xffff, now);
      }
      this.highest = seq;
      return;
    }
    this.remove(seq); // late or retransmitted: no longer missing
  }

  /**
   * Builds one NACK (from `senderSsrc` about `mediaSsrc`) for the entries due at `now`
   * into this generator's own buffer and returns the view to send, or undefined when
   * nothing is due. Entries past their last try are dropped.
   */
  due(now: number, senderSsrc: number, mediaSsrc: number): Buffer | undefined {
    if (now < this.nextDue) return undefined;
    const b = this.packet;
    let fcis = 0;
    let pidAt = -1;
    let pid = 0;
    let next = Infinity;
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) % NACK_MAX_MISSING;
      if (this.tries[at]! >= NACK_MAX_TRIES) continue;
      if (this.dueAt[at]! > now) {
        next = Math.min(next, this.dueAt[at]!);
        continue;
      }
      const seq = this.seqs[at]!;
      const offset = (seq - pid - 1) & 0xffff;
      if (pidAt >= 0 && offset < 16) {
        b.writeUInt16BE(b.readUInt16BE(pidAt + 2) | (1 << offset), pidAt + 2);
      } else if (fcis < MAX_FCI) {
        pidAt = 12 + 4 * fcis++;
        pid = seq;
        b.writeUInt16BE(seq, pidAt);
        b.writeUInt16BE(0, pidAt + 2);
      } else {
        next = now; // no room in this packet: the next call sends it
        continue;
      }
      this.nacked++;
      if (++this.tries[at]! >= NACK_MAX_TRIES) this.givenUp++;
      else next = Math.min(next, (this.dueAt[at] = now + NACK_RETRY_MS));
    }
    this.compact();
    this.nextDue = next;
    if (fcis === 0) return undefined;
    b[0] = 0x80 | 1;
    b[1] = RTCP_RTPFB;
    b.writeUInt16BE(2 + fcis, 2);
    b.writeUInt32BE(senderSsrc >>> 0, 4);
    b.writeUInt32BE(mediaSsrc >>> 0, 8);
    return b.subarray(0, 12 + 4 * fcis);
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
    this.nextDue = Infinity;
  }

  private add(seq: number, now: number): void {
    if (this.count === NACK_MAX_MISSING) {
      this.head = (this.head + 1) % NACK_MAX_MISSING; // the oldest gives way
      this.count--;
    }
    const at = (this.head + this.count++) % NACK_MAX_MISSING;
    this.seqs[at] = seq;
    this.tries[at] = 0;
    const due = now + NACK_FIRST_DELAY_MS;
    this.dueAt[at] = due;
    if (due < this.nextDue) this.nextDue = due;
  }

  /** Marks `seq` as arrived (tries past the limit): dropped by the next compact. */
  private remove(seq: number): void {
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) % NACK_MAX_MISSING;
      if (this.seqs[at] === seq) {
        this.tries[at] = 0xff;
        break;
      }
    }
    this.compact();
  }

  /** Drops finished entries from the front of the ring (those behind stay till then). */
  private compact(): void {
    while (this.count > 0 && this.tries[this.head]! >= NACK_MAX_TRIES) {
      this.head = (this.head + 1) % NACK_MAX_MISSING;
      this.count--;
    }
  }
}
