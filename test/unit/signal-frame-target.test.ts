// The byte-level forwarding path (#17.1 session 13) against the text path it stands in
// for: frameTarget accepts a frame only when decoding it, parseInbound and forwardedFrame
// would forward it, to the same target, and forwardedBytes gives byte for byte the
// encoding of forwardedFrame's text. A frame it declines takes the text path, so every
// verdict and reason stays that path's. Tens of thousands of generated, edge-case and
// mutated frames, seeded.
import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { frameTarget } from '../../src/api/signal/frame-target.js';
import {
  MAX_NESTING_DEPTH,
  forwardedBytes,
  forwardedFrame,
  parseInbound,
} from '../../src/api/signal/signal-wire.js';
import { FrameGen, prng } from '../fixtures/signal-frame-gen.js';

const USER = 'alice-1';

/** The text path's outcome: a reason, or the target and the forwarded frame's bytes. */
function textPath(frame: Buffer): { reason: string } | { target: string; bytes: Buffer } {
  const text = frame.toString('utf8');
  const m = parseInbound(text);
  if (typeof m === 'string') return { reason: m };
  return { target: m.target, bytes: Buffer.from(forwardedFrame(USER, m, text)) };
}

/** Whether the text path forwards `frame` verbatim after the originator (exactly the wire keys). */
function textPathVerbatim(frame: Buffer): boolean {
  const text = frame.toString('utf8');
  const m = parseInbound(text);
  if (typeof m === 'string') return false;
  const keys = Object.keys(m);
  return keys.length === 3 && keys[0] === 'target' && keys[1] === 'type' && keys[2] === 'payload';
}

/** Checks one frame; returns whether the byte path took it. */
function check(frame: Buffer, what: string): boolean {
  const target = frameTarget(frame);
  if (target === undefined) return false;
  // ws refuses invalid UTF-8 (1007) before a frame gets here; the byte path must too.
  expect(isUtf8(frame), `${what}: accepted invalid UTF-8 ${frame.toString('hex')}`).toBe(true);
  const ref = textPath(frame);
  expect(
    ref,
    `${what}: accepted a frame the text path refuses: ${JSON.stringify(frame.toString())}`,
  ).toHaveProperty('target');
  const { target: refTarget, bytes } = ref as { target: string; bytes: Buffer };
  expect(target, `${what}: target of ${JSON.stringify(frame.toString())}`).toBe(refTarget);
  expect(
    textPathVerbatim(frame),
    `${what}: not verbatim on the text path: ${JSON.stringify(frame.toString())}`,
  ).toBe(true);
  const mine = forwardedBytes(USER, frame);
  expect(mine.equals(bytes), `${what}: forwarded bytes of ${JSON.stringify(frame.toString())}`).toBe(true);
  return true;
}

const wire = (payload: string, target = '"bob"', type = '"t"'): string =>
  `{"target":${target},"type":${type},"payload":${payload}}`;

describe('frameTarget and forwardedBytes against the text path', () => {
  it('forwards the frames clients send, byte for byte as the text path', () => {
    const frames = [
      wire(
        '{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host","sdpMid":"0","sdpMLineIndex":0}',
      ),
      wire('{"type":"offer","sdp":"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n"}'),
      wire('null'),
      wire('-0'),
      wire('1e400'),
      wire('[0.1e-7, -0 ,{"sdp":"v=0\\r\\n\\u00e9"}]'),
      wire('"caf\u00e9 \\ud83c\\udfa7 \\ud800 \u{1f600}"'),
      wire('"\u007f\u2028"'),
      wire('{}', '"bøb €"'),
      wire('[]', '"\u{1f600}"'),
      ' \n{ "target" : "bob", "type":"ws", "payload" : [ 1 ,2 ] }\t\r\n',
      wire('{"a":{"a":{"a":[[[[true,false,null]]]]}}}'),
      wire('[' + '['.repeat(MAX_NESTING_DEPTH - 3) + ']'.repeat(MAX_NESTING_DEPTH - 3) + ']'),
      wire('"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\uFFFF\\uabcd"', '"b"', '""'),
    ];
    for (const f of frames) expect(check(Buffer.from(f), 'fixed'), f).toBe(true);
  });

  it('writes any originator as forwardedFrame does, escaped or multi-byte', () => {
    const frame = Buffer.from(' ' + wire('{"a":[1,"\u00e9"]}') + ' ');
    const text = frame.toString();
    const m = parseInbound(text);
    if (typeof m === 'string') throw new Error(m);
    for (const originator of [
      'bob',
      'a.b_c-d',
      ' ~!',
      'a"b',
      'a\\b',
      'tab\t',
      '\u007f',
      'é',
      '€😀',
      '\ud800',
      '',
    ]) {
      const expected = Buffer.from(forwardedFrame(originator, m, text));
      expect(forwardedBytes(originator, frame).equals(expected), JSON.stringify(originator)).toBe(true);
    }
  });

  it('declines what it does not forward itself: the text path answers those', () => {
    const frames = [
      '',
      ' ',
      '{}',
      '[]',
      'null',
      '\ufeff' + wire('1'), // a BOM is not JSON whitespace
      wire('1') + 'x',
      wire('1') + '{}',
      wire('1,'),
      wire('[1,]'),
      wire('{"a":1,}'),
      wire('[1 2]'),
      wire('{"a" 1}'),
      wire('{a:1}'),
      wire("'x'"),
      wire('01'),
      wire('-01'),
      wire('1.'),
      wire('.5'),
      wire('1e'),
      wire('1e+'),
      wire('+1'),
      wire('-'),
      wire('NaN'),
      wire('Infinity'),
      wire('tru'),
      wire('nul'),
      wire('"\\x41"'),
      wire('"\\u12"'),
      wire('"\\u12G4"'),
      wire('"\\\'"'),
      wire('"tab\there"'),
      wire('"nl\nhere"'),
      wire('"open'),
      wire('1/*c*/'),
      wire('1\u000b'), // vertical tab: not JSON whitespace
      wire('1\f'),
      wire('1\u00a0'),
      wire('[' + '['.repeat(MAX_NESTING_DEPTH - 1) + ']'.repeat(MAX_NESTING_DEPTH - 1) + ']'),
      wire('{"a":' + '{"a":'.repeat(MAX_NESTING_DEPTH) + '1' + '}'.repeat(MAX_NESTING_DEPTH) + '}'),
      wire('1', '""'),
      wire('1', '1'),
      wire('1', 'null'),
      wire('1', '"b\\u006fb"'), // an escaped target: decoded by the text path
      wire('1', '"bob"', '1'),
      '{"t\\u0061rget":"bob","type":"t","payload":1}',
      '{"target":"bob","type":"t","payload":1,"target":"carol"}',
      '{"target":"bob","type":"t","payload":1,"payload":2}',
      '{"target":"bob","payload":1,"type":"t"}',
      '{"type":"t","target":"bob","payload":1}',
      '{"target":"bob","type":"t"}',
      '{"target":"bob","type":"t","payload":1,"x":2}',
      '{"originator":"mallory","target":"bob","type":"t","payload":1}',
      '{"target":"bob","type":"t","payload":1}}',
      '{"target":"bob","type":"t","payload":1',
      '{"target":"bob","type":"t","payload":}',
      '{"target":"bob","type":"t",}',
      '{"target":"bob" "type":"t","payload":1}',
    ];
    for (const f of frames) {
      expect(check(Buffer.from(f), 'declined'), f).toBe(false);
      expect(frameTarget(Buffer.from(f)), f).toBeUndefined();
    }
    // Malformed UTF-8 (ws closes with 1007 first; declined here all the same).
    for (const bad of [
      [0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
      [0x80],
      [0xff],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
    ]) {
      for (const where of ['target', 'payload']) {
        const frame = Buffer.concat([
          Buffer.from(where === 'target' ? '{"target":"b' : '{"target":"b","type":"t","payload":"a'),
          Buffer.from(bad),
          Buffer.from(where === 'target' ? '","type":"t","payload":1}' : '"}'),
        ]);
        expect(frameTarget(frame), frame.toString('hex')).toBeUndefined();
      }
    }
  });

  it(
    'agrees with the text path on 40,000 generated frames and 40,000 mutations of them',
    { timeout: 120_000 },
    () => {
      const seed = 0x17_2026;
      const gen = new FrameGen(prng(seed));
      let taken = 0;
      for (let n = 0; n < 40_000; n++) {
        const frame = Buffer.from(gen.frame());
        const what = `seed ${seed} frame ${n}`;
        if (check(frame, what)) taken++;
        const mutated = gen.mutate(frame);
        check(mutated, `${what} mutated`);
      }
      // Not a vacuous pass: most frames take the byte path.
      expect(taken).toBeGreaterThan(8_000);
    },
  );

  it(
    'takes every wire-shaped frame with plain keys and target, however it is spaced and escaped',
    { timeout: 120_000 },
    () => {
      const gen = new FrameGen(prng(0x5e55_1013));
      for (let n = 0; n < 20_000; n++) {
        const frame = gen.wireFrame();
        expect(check(Buffer.from(frame), `wire frame ${n}`), frame).toBe(true);
      }
    },
  );
});
