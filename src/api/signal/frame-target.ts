import { MAX_NESTING_DEPTH } from './signal-wire.js';

/**
 * The target of a client frame that can be forwarded as the bytes it came in, found in
 * one pass over those bytes without decoding them to a string or parsing them into
 * objects (decode, JSON.parse, the forwarded string and its encoding again were a fifth
 * of a forwarded message's CPU and most of its allocation, #17.1 session 13).
 *
 * It answers only for the frame every client sends: one JSON object whose keys are
 * exactly "target", "type" and "payload", in that order, written without escapes, each
 * once; target a non-empty string without escapes, type a string; the whole text valid
 * JSON (RFC 8259, as JSON.parse accepts it) nested at most MAX_NESTING_DEPTH levels, its
 * strings valid UTF-8. For that frame parseInbound would return the same target and
 * forwardedFrame the same text. Anything else (invalid JSON, other or more keys, a
 * duplicate key whose last value JSON.parse keeps, an escaped key, too deep) answers
 * undefined, and the caller takes parseInbound's path, which gives every other verdict
 * and reason as before: this function only has to be right about what it accepts.
 *
 * Runs once per message: no allocation but the target string.
 */
export function frameTarget(frame: Buffer): string | undefined {
  const end = frame.length;
  let i = skipSpace(frame, 0, end);
  if (frame[i] !== OPEN_BRACE) return undefined;
  i = skipSpace(frame, i + 1, end);
  if (!isKey(frame, i, TARGET_KEY)) return undefined;
  i = skipColon(frame, i + TARGET_KEY.length, end);
  if (i < 0 || frame[i] !== QUOTE) return undefined;
  const targetFrom = i + 1;
  // The target is used as a name: one without escapes is its bytes; any other takes the
  // parser's path, which decodes it.
  let ascii = true;
  let j = targetFrom;
  for (; j < end; j++) {
    const c = frame[j]!;
    if (c === QUOTE) break;
    if (c === BACKSLASH || c < 0x20) return undefined;
    if (c >= 0x80) {
      ascii = false;
      const next = skipUtf8(frame, j, end);
      if (next < 0) return undefined;
      j = next - 1;
    }
  }
  if (j >= end || j === targetFrom) return undefined;
  const targetTo = j;
  i = skipComma(frame, j + 1, end);
  if (i < 0 || !isKey(frame, i, TYPE_KEY)) return undefined;
  i = skipColon(frame, i + TYPE_KEY.length, end);
  if (i < 0 || frame[i] !== QUOTE) return undefined;
  i = skipString(frame, i, end);
  if (i < 0) return undefined;
  i = skipComma(frame, i, end);
  if (i < 0 || !isKey(frame, i, PAYLOAD_KEY)) return undefined;
  i = skipColon(frame, i + PAYLOAD_KEY.length, end);
  if (i < 0) return undefined;
  i = skipValue(frame, i, end);
  if (i < 0) return undefined;
  i = skipSpace(frame, i, end);
  if (frame[i] !== CLOSE_BRACE) return undefined;
  if (skipSpace(frame, i + 1, end) !== end) return undefined;
  return frame.toString(ascii ? 'latin1' : 'utf8', targetFrom, targetTo);
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/** A key with its quotes, as bytes: compared raw, so an escaped spelling does not match. */
const keyBytes = (name: string): Uint8Array => Buffer.from(`"${name}"`, 'latin1');
const TARGET_KEY = keyBytes('target');
const TYPE_KEY = keyBytes('type');
const PAYLOAD_KEY = keyBytes('payload');
const TRUE = Buffer.from('true', 'latin1');
const FALSE = Buffer.from('false', 'latin1');
const NULL = Buffer.from('null', 'latin1');

/** `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`: the escapes JSON has besides `\u`. */
const SHORT_ESCAPE = new Uint8Array(128);
for (const c of '"\\/bfnrt') SHORT_ESCAPE[c.charCodeAt(0)] = 1;

/** What an object or array open at each depth is (1: object, 2: array); one for the process. */
const containers = new Uint8Array(MAX_NESTING_DEPTH + 2);
const IN_OBJECT = 1;
const IN_ARRAY = 2;

/** JSON's whitespace: space, tab, line feed, carriage return (nothing else, no BOM). */
function skipSpace(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
  return i;
}

function isKey(b: Uint8Array, i: number, key: Uint8Array): boolean {
  if (i + key.length > b.length) return false;
  for (let k = 0; k < key.length; k++) if (b[i + k] !== key[k]) return false;
  return true;
}

/** Past optional space, a colon and optional space: where the value starts, or -1. */
function skipColon(b: Uint8Array, i: number, end: number): number {
  i = skipSpace(b, i, end);
  if (b[i] !== COLON) return -1;
  return skipSpace(b, i + 1, end);
}

/** Past a member's key (a string at `i`) and its colon with the space around it, or -1. */
function skipMemberKey(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== QUOTE) return -1;
  i = skipString(b, i, end);
  return i < 0 ? -1 : skipColon(b, i, end);
}

/** Past optional space, a comma and optional space, or -1. */
function skipComma(b: Uint8Array, i: number, end: number): number {
  i = skipSpace(b, i, end);
  if (b[i] !== COMMA) return -1;
  return skipSpace(b, i + 1, end);
}

/**
 * What each byte is inside a string: 0 carried as it is (the common case, one table
 * load a byte), or QUOTE_BYTE, BACKSLASH_BYTE, CONTROL_BYTE (not allowed raw) and
 * HIGH_BYTE (the start of a UTF-8 sequence).
 */
const STRING_BYTE = new Uint8Array(256);
const QUOTE_BYTE = 1;
const BACKSLASH_BYTE = 2;
const CONTROL_BYTE = 3;
const HIGH_BYTE = 4;
STRING_BYTE.fill(CONTROL_BYTE, 0, 0x20);
STRING_BYTE.fill(HIGH_BYTE, 0x80, 0x100);
STRING_BYTE[QUOTE] = QUOTE_BYTE;
STRING_BYTE[BACKSLASH] = BACKSLASH_BYTE;

/** Past the string whose opening quote is at `i`, or -1 when it is not a valid one. */
function skipString(b: Uint8Array, i: number, end: number): number {
  i++;
  for (;;) {
    let kind = 0;
    while (i < end && (kind = STRING_BYTE[b[i]!]!) === 0) i++;
    if (i >= end) return -1;
    if (kind === QUOTE_BYTE) return i + 1;
    if (kind === BACKSLASH_BYTE) {
      if (i + 1 >= end) return -1;
      const e = b[i + 1]!;
      if (e === 0x75) {
        // \uXXXX: any four hex digits (JSON.parse takes lone surrogates too).
        if (i + 6 > end) return -1;
        for (let k = i + 2; k < i + 6; k++) if (!isHex(b[k]!)) return -1;
        i += 6;
      } else if (e < 128 && SHORT_ESCAPE[e] === 1) i += 2;
      else return -1;
    } else if (kind === CONTROL_BYTE) return -1;
    else {
      i = skipUtf8(b, i, end);
      if (i < 0) return -1;
    }
  }
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

const isContinuation = (c: number): boolean => (c & 0xc0) === 0x80;

/**
 * Past one UTF-8 sequence starting at `i` (its first byte >= 0x80), or -1 when it is not
 * a well-formed one (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
 * ws refuses invalid UTF-8 before a frame gets here (1007); checked again so that the
 * bytes forwarded are always the ones decoding and encoding again would give.
 */
function skipUtf8(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  if (c >= 0xc2 && c <= 0xdf) return i + 2 <= end && isContinuation(b[i + 1]!) ? i + 2 : -1;
  if (c >= 0xe0 && c <= 0xef) {
    if (i + 3 > end) return -1;
    const c1 = b[i + 1]!;
    if (c === 0xe0 ? c1 < 0xa0 || c1 > 0xbf : c === 0xed ? c1 < 0x80 || c1 > 0x9f : !isContinuation(c1))
      return -1;
    return isContinuation(b[i + 2]!) ? i + 3 : -1;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (i + 4 > end) return -1;
    const c1 = b[i + 1]!;
    if (c === 0xf0 ? c1 < 0x90 || c1 > 0xbf : c === 0xf4 ? c1 < 0x80 || c1 > 0x8f : !isContinuation(c1))
      return -1;
    return isContinuation(b[i + 2]!) && isContinuation(b[i + 3]!) ? i + 4 : -1;
  }
  return -1;
}

/** Past the number at `i` (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`), or -1. */
function skipNumber(b: Uint8Array, i: number, end: number): number {
  if (b[i] === MINUS) i++;
  let c = b[i];
  if (c === ZERO) i++;
  else if (c !== undefined && c > ZERO && c <= NINE) {
    i++;
    while (i < end && isDigit(b[i]!)) i++;
  } else return -1;
  if (b[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(b[i]!)) return -1;
    while (i < end && isDigit(b[i]!)) i++;
  }
  c = b[i];
  if (c === 0x65 || c === 0x45) {
    i++;
    c = b[i];
    if (c === 0x2b || c === MINUS) i++;
    if (i >= end || !isDigit(b[i]!)) return -1;
    while (i < end && isDigit(b[i]!)) i++;
  }
  return i;
}

const isDigit = (c: number): boolean => c >= ZERO && c <= NINE;

/** Past `word` (true, false, null) at `i`, or -1. */
function skipWord(b: Uint8Array, i: number, word: Uint8Array): number {
  return isKey(b, i, word) ? i + word.length : -1;
}

/**
 * Past the JSON value at `i` (a member's value in the frame's object, depth 1), or -1
 * when it is not valid or nests deeper than MAX_NESTING_DEPTH levels counting the frame's
 * object (parseInbound's limit). Iterative, with the open containers in `containers`:
 * no recursion and no stack of objects.
 */
function skipValue(b: Uint8Array, i: number, end: number): number {
  let depth = 1;
  for (;;) {
    // A value starts at i (space before it already skipped).
    const c = b[i];
    if (c === QUOTE) i = skipString(b, i, end);
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > MAX_NESTING_DEPTH) return -1;
      i = skipSpace(b, i + 1, end);
      if (c === OPEN_BRACE) {
        containers[depth] = IN_OBJECT;
        if (b[i] === CLOSE_BRACE) {
          depth--;
          i++;
        } else {
          // The first member's key and colon; its value is next round's.
          i = skipMemberKey(b, i, end);
          if (i < 0) return -1;
          continue;
        }
      } else {
        containers[depth] = IN_ARRAY;
        if (b[i] === CLOSE_BRACKET) {
          depth--;
          i++;
        } else continue;
      }
    } else if (c === 0x74) i = skipWord(b, i, TRUE);
    else if (c === 0x66) i = skipWord(b, i, FALSE);
    else if (c === 0x6e) i = skipWord(b, i, NULL);
    else i = skipNumber(b, i, end);
    if (i < 0) return -1;
    // After a value: close containers, or a comma and the next member or element.
    for (;;) {
      if (depth === 1) return i;
      i = skipSpace(b, i, end);
      const d = b[i];
      if (d === COMMA) {
        i = skipSpace(b, i + 1, end);
        if (containers[depth] === IN_OBJECT) {
          i = skipMemberKey(b, i, end);
          if (i < 0) return -1;
        }
        break;
      }
      if (d === (containers[depth] === IN_OBJECT ? CLOSE_BRACE : CLOSE_BRACKET)) {
        depth--;
        i++;
      } else return -1;
    }
  }
}
