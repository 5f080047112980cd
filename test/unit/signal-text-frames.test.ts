// textFrames (#17.1) read back by ws's own frame parser: one Buffer of frames is the
// messages, in order, whatever their length class and encoding.
import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { textFrames } from '../../src/api/signal/text-frames.js';

/** ws's frame parser, which its types do not declare. */
interface FrameReader {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  write(bytes: Buffer): void;
}
const Receiver = (ws as unknown as { Receiver: new (opts: object) => FrameReader }).Receiver;

function decode(bytes: Buffer): string[] {
  const out: string[] = [];
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  receiver.on('message', (data, isBinary) => {
    expect(isBinary).toBe(false);
    out.push(data.toString('utf8'));
  });
  receiver.on('error', (err) => {
    throw err;
  });
  receiver.write(bytes);
  return out;
}

describe('textFrames', () => {
  it('frames strings and bytes at each header size, multi-byte UTF-8 included', () => {
    const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000];
    const messages: (string | Uint8Array)[] = lengths.map((n) => 'a'.repeat(n));
    messages.push('é'.repeat(63), 'é'.repeat(32_768), '🎉 ok', Buffer.from('{"from":"the bus","ü":1}'));
    const expected = messages.map((m) => (typeof m === 'string' ? m : Buffer.from(m).toString('utf8')));
    expect(decode(textFrames(messages))).toEqual(expected);
  });

  it('makes frames of exactly header plus payload bytes', () => {
    expect(textFrames(['abc'])).toEqual(Buffer.from([0x81, 3, 0x61, 0x62, 0x63]));
    expect(textFrames(['x'.repeat(126)]).subarray(0, 4)).toEqual(Buffer.from([0x81, 126, 0, 126]));
    expect(textFrames(['x'.repeat(65_536)]).subarray(0, 10)).toEqual(
      Buffer.from([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    );
    expect(textFrames([])).toHaveLength(0);
  });
});
