/**
 * The bus port: subject-based publish/subscribe and request/reply between the parts of
 * Chorus, in one process or across nodes. Subjects follow NATS rules (`.`-separated
 * tokens, `*` matches one token, `>` the rest) so the NATS implementation is a thin
 * mapping and the local one behaves the same.
 */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Present when the sender used `request`: the first answer wins. */
  respond?(data: Uint8Array | string): void;
}

export type BusHandler = (msg: BusMessage) => void;

export interface BusSubscription {
  unsubscribe(): void;
}

export interface Bus {
  /**
   * Whether what is published here can reach another node: false for the in-process bus,
   * whose only subscribers are this process's. A part that keeps a table of its own
   * node's state (Presence) may then answer from it and skip the bus. Absent means true:
   * a bus that does not say is taken to reach other nodes.
   */
  readonly reachesOtherNodes?: boolean;
  publish(subject: string, data?: Uint8Array | string): void;
  subscribe(subject: string, handler: BusHandler): BusSubscription;
  /** Resolves with the first answer; rejects with NoRespondersError or BusTimeoutError. */
  request(subject: string, data: Uint8Array | string, opts?: { timeoutMs?: number }): Promise<Uint8Array>;
  close(): Promise<void>;
}

export class NoRespondersError extends Error {
  constructor(subject: string) {
    super(`no responders on ${subject}`);
    this.name = 'NoRespondersError';
  }
}

export class BusTimeoutError extends Error {
  constructor(subject: string, ms: number) {
    super(`no answer on ${subject} within ${ms} ms`);
    this.name = 'BusTimeoutError';
  }
}

const SUBJECT_SPECIAL = /[.*>%\s]/;

/**
 * Makes any string safe as one subject token: `.`, `*`, `>`, `%` and whitespace are
 * percent-encoded, so user names with dots stay one token.
 */
export function subjectToken(s: string): string {
  // Most names need no escape: a test, not a replace with a callback (every Signal
  // message looks its target up by token, #17.1).
  if (!SUBJECT_SPECIAL.test(s)) return s;
  return s.replace(/[.*>%\s]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

const encoder = new TextEncoder();

/** A message's bytes as both buses carry them: strings as UTF-8, nothing as no bytes. */
export function busBytes(d: Uint8Array | string | undefined): Uint8Array {
  return d === undefined ? new Uint8Array(0) : typeof d === 'string' ? encoder.encode(d) : d;
}
