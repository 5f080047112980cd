/**
 * The Signal Server's wire format (seed 001, protocols/signal.md): bodies, message
 * shapes, close codes. Everything a client of the original depends on is spelled here.
 */

export const COOKIE_NAME = 'user_username';
/** Browsers cap cookie lifetimes at 400 days; a registration should last as long. */
export const COOKIE_MAX_AGE_SECONDS = 400 * 24 * 3600;

export const CloseCode = {
  /** The original's code for a missing or unknown identity. */
  unauthenticated: { code: 4000, reason: 'UNAUTHENTICATED' },
  /** Chorus: this user connected again elsewhere; the newest connection wins. */
  replaced: { code: 4001, reason: 'REPLACED' },
  /** Chorus: an admin called /v1/kick-active-users. */
  kicked: { code: 4002, reason: 'KICKED' },
  /** The client keeps sending faster than the rate limit allows. */
  rateLimited: { code: 1008, reason: 'rate limit exceeded' },
  /** A message over SIGNAL_MAX_FRAME_BYTES. */
  tooBig: { code: 1009, reason: 'message too big' },
  /** The client does not read what it is sent; its queue is full. */
  sendQueueFull: { code: 1013, reason: 'send queue full' },
  /** Server shutdown. */
  goingAway: { code: 1001, reason: 'server shutting down' },
} as const;

export interface RegisterReply {
  /**
   * `RATE_LIMITED` (Chorus, with 429): too many registrations from the client's address.
   * `UNAVAILABLE` (Chorus, with 503): the cluster's store is out of reach; try again.
   */
  status: 'SUCCESS' | 'TAKEN' | 'INVALID' | 'RATE_LIMITED' | 'UNAVAILABLE';
  message: string;
}

export const registerReply = (status: RegisterReply['status'], message = ''): RegisterReply => ({
  status,
  message,
});

/** An error or notice sent to a client, in the shape of the original's TARGET_NOT_FOUND. */
export function noticeFrame(type: string, payload: unknown = null): string {
  return JSON.stringify({ target: '', type, payload });
}

export const TARGET_NOT_FOUND = noticeFrame('TARGET_NOT_FOUND');

export interface InboundMessage {
  target: string;
  type: string;
  payload: unknown;
}

/**
 * Deepest nesting of arrays and objects a frame may carry. The payload is re-serialised
 * when forwarded, and JSON.stringify recurses: about 10,000 levels overflow the stack
 * (a RangeError thrown inside the socket's message handler). Signalling payloads (SDP,
 * ICE candidates) nest a few levels; 64 leaves room for any real application.
 */
export const MAX_NESTING_DEPTH = 64;

/** Whether arrays and objects in `value` nest more than `limit` levels (`value` is one). */
export function valueDeeperThan(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) if (valueDeeperThan(item, limit - 1)) return true;
    return false;
  }
  const o = value as Record<string, unknown>;
  for (const key in o) if (valueDeeperThan(o[key], limit - 1)) return true;
  return false;
}

/** Parses a client frame; returns the reason as a string when it is not a valid message. */
export function parseInbound(text: string): InboundMessage | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'malformed JSON';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'expected a JSON object';
  // Checked on the parsed value (V8's JSON.parse does not recurse, so any depth parses):
  // a walk of a few nodes, not a scan of every character of the text (#17.1).
  if (valueDeeperThan(value, MAX_NESTING_DEPTH)) return `JSON nested deeper than ${MAX_NESTING_DEPTH} levels`;
  const m = value as Record<string, unknown>;
  if (typeof m.target !== 'string' || m.target === '') return 'target must be a non-empty string';
  if (typeof m.type !== 'string') return 'type must be a string';
  // An absent payload is forwarded as null (forwardedFrame): not set here, so the frame's
  // own keys stay what the client sent.
  return m as unknown as InboundMessage; // the parsed object itself: no copy per message
}

/** A client frame's keys, in the order the forwarded form keeps after the originator. */
const WIRE_KEYS = ['target', 'type', 'payload'] as const;

/** Whether `m` has exactly the keys target, type and payload, in that order (bench/signal uses it too). */
export function hasExactlyWireKeys(m: InboundMessage): boolean {
  let i = 0;
  for (const key in m) {
    if (key !== WIRE_KEYS[i]) return false;
    i++;
  }
  return i === WIRE_KEYS.length;
}

/**
 * The forwarded form, keys in the original's order: originator, target, type, payload.
 * `text` is the frame `m` was parsed from: when it has exactly those three keys in that
 * order (what every client sends), the forwarded form is that text with the originator
 * put first, so the payload passes through untouched and is not serialised again
 * (JSON.stringify was a tenth of a forwarded message's CPU, #17.1). A frame with other or
 * reordered keys, or no payload, is serialised: unknown keys dropped, payload null.
 * (A frame naming its own `originator` always takes that path: the server's wins.)
 */
export function forwardedFrame(originator: string, m: InboundMessage, text?: string): string {
  if (text !== undefined && hasExactlyWireKeys(m)) {
    // JSON: only whitespace may come before the object's opening brace.
    return `{"originator":${JSON.stringify(originator)},${text.slice(text.indexOf('{') + 1)}`;
  }
  return JSON.stringify({ originator, target: m.target, type: m.type, payload: m.payload ?? null });
}

/** The forwarded form's first bytes, up to the originator's name: `{"originator":"`. */
const ORIGINATOR_HEAD = Buffer.from('{"originator":"', 'latin1');

/**
 * forwardedFrame's text for a frame with exactly target, type and payload (frameTarget
 * said so), as bytes: `{"originator":<originator as JSON>,` and the frame's bytes after
 * its opening brace, copied into one Buffer (the frame may be a view into a read buffer
 * reused after this turn). Byte for byte what forwardedFrame's string encodes to. A name
 * JSON writes as it is (printable ASCII but `"` and `\`: every name usernameProblem lets
 * through) is copied a byte a character: Buffer.write with an encoding, JSON.stringify
 * and byteLength made this cost as much as checking the whole frame (#17.1 session 13).
 */
export function forwardedBytes(originator: string, frame: Buffer): Buffer {
  let brace = 0;
  while (frame[brace] !== 0x7b) brace++; // JSON: only whitespace before the object
  const n = originator.length;
  for (let k = 0; k < n; k++) {
    const c = originator.charCodeAt(k);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c)
      return forwardedBytesEscaped(originator, frame, brace);
  }
  const head = ORIGINATOR_HEAD.length + n + 2;
  const out = Buffer.allocUnsafe(head + frame.length - brace - 1);
  let at = 0;
  for (; at < ORIGINATOR_HEAD.length; at++) out[at] = ORIGINATOR_HEAD[at]!;
  for (let k = 0; k < n; k++) out[at++] = originator.charCodeAt(k);
  out[at++] = 0x22; // '"'
  out[at] = 0x2c; // ','
  frame.copy(out, head, brace + 1);
  return out;
}

/** forwardedBytes for an originator JSON escapes or writes in more than one byte a character. */
function forwardedBytesEscaped(originator: string, frame: Buffer, brace: number): Buffer {
  const prefix = Buffer.from(`{"originator":${JSON.stringify(originator)},`);
  return Buffer.concat([prefix, frame.subarray(brace + 1)]);
}

/** Letters, digits, `_`, `-`, `.`: safe in a cookie, a URL and a bus subject token. */
export function usernameProblem(name: unknown, maxLength: number): string | undefined {
  if (typeof name !== 'string' || name.trim() === '') return 'username cannot be empty';
  if (name.length > maxLength) return `username must be at most ${maxLength} characters`;
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) return 'username may contain only letters, digits, _, - and .';
  return undefined;
}
