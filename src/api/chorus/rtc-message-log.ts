/** Server messages kept for a resume (a dropped client missing more gets the full state). */
const KEPT_MESSAGES = 500;
/** ... and at most this many bytes of them: a room busy with data must not grow every session. */
const KEPT_BYTES = 256 * 1024;

export interface SentMessage {
  seq: number;
  text: string;
}

/**
 * The numbered messages a native signalling session sent, the last ones kept (bounded by
 * count and bytes) so a client that resumes after a drop, here or on another node, gets
 * exactly what it missed, in order, with the numbers it would have had.
 */
export class RtcMessageLog {
  private seq: number;
  private readonly kept: SentMessage[] = [];
  private keptBytes = 0;

  /** `seq`: the last number already used (a session handed over from another node goes on from its). */
  constructor(seq = 0) {
    this.seq = seq;
  }

  /** The last number used. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Numbers `msg`, keeps it and returns its text for the wire. */
  append(msg: Record<string, unknown>): string {
    const seq = ++this.seq;
    const text = JSON.stringify({ ...msg, seq });
    this.keep({ seq, text });
    return text;
  }

  /** Keeps a message numbered elsewhere (the replay a handed-over session brings along). */
  keep(message: SentMessage): void {
    this.kept.push(message);
    this.keptBytes += message.text.length;
    while (this.kept.length > KEPT_MESSAGES || (this.keptBytes > KEPT_BYTES && this.kept.length > 1))
      this.keptBytes -= this.kept.shift()!.text.length;
  }

  /**
   * The messages after `lastSeq`, the client's last one: all of them, or undefined when
   * some are no longer kept (the client then needs the whole state again).
   */
  missedAfter(lastSeq: number): SentMessage[] | undefined {
    const from = lastSeq + 1;
    const oldest = this.kept[0]?.seq ?? this.seq + 1;
    if (from < oldest && from <= this.seq) return undefined;
    return this.kept.filter((m) => m.seq >= from);
  }
}
