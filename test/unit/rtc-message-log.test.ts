import { describe, expect, it } from 'vitest';
import { RtcMessageLog } from '../../src/api/chorus/rtc-message-log.js';

const seqs = (m: { seq: number }[] | undefined) => m?.map((x) => x.seq);

describe('RtcMessageLog', () => {
  it('numbers each message on the wire and gives back exactly the ones after a client’s last', () => {
    const log = new RtcMessageLog();
    for (let i = 0; i < 5; i++)
      expect(JSON.parse(log.append({ type: 'x', i }))).toEqual({ type: 'x', i, seq: i + 1 });
    expect(log.lastSeq).toBe(5);
    expect(seqs(log.missedAfter(2))).toEqual([3, 4, 5]);
    expect(seqs(log.missedAfter(5))).toEqual([]); // nothing missed
    expect(seqs(log.missedAfter(0))).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps the last 500 messages: a client missing older ones gets undefined (the whole state again)', () => {
    const log = new RtcMessageLog();
    for (let i = 0; i < 600; i++) log.append({ type: 'x' });
    expect(log.missedAfter(99)).toBeUndefined(); // message 100 is gone
    expect(seqs(log.missedAfter(100))?.[0]).toBe(101);
    expect(log.missedAfter(100)).toHaveLength(500);
  });

  it('keeps at most 256 KiB, yet always the newest message however big', () => {
    const log = new RtcMessageLog();
    const big = 'a'.repeat(100 * 1024);
    for (let i = 0; i < 4; i++) log.append({ type: 'data', payload: big });
    expect(log.missedAfter(1)).toBeUndefined(); // 4 x 100 KiB: the first two went
    expect(seqs(log.missedAfter(2))).toEqual([3, 4]);
    log.append({ type: 'data', payload: 'b'.repeat(400 * 1024) });
    expect(seqs(log.missedAfter(4))).toEqual([5]);
  });

  it('goes on from a handed-over session’s number and keeps the replay it brought', () => {
    const log = new RtcMessageLog(41);
    log.keep({ seq: 40, text: '{"seq":40}' });
    log.keep({ seq: 41, text: '{"seq":41}' });
    expect(JSON.parse(log.append({ type: 'y' })).seq).toBe(42);
    expect(seqs(log.missedAfter(39))).toEqual([40, 41, 42]);
    expect(log.missedAfter(38)).toBeUndefined();
    // A client ahead of the log (it cannot be, but a forged lastSeq): nothing to replay.
    expect(seqs(new RtcMessageLog(7).missedAfter(9))).toEqual([]);
  });
});
