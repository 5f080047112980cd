import { describe, expect, it } from 'vitest';
import { formatLoadTest, quantile, type LoadTestResult } from '../../src/api/chorus/load-test-table.js';
import { ReceivedStream } from '../../src/api/chorus/whip-client.js';

/** An RTP packet with `seq` and `ts` (12-byte header and a small payload). */
function rtp(seq: number, ts: number, pt = 96): Buffer {
  const b = Buffer.alloc(20);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  return b;
}

describe('load-test measures', () => {
  it('counts loss by sequence numbers across the 16-bit wrap, and ignores RTCP', () => {
    const s = new ReceivedStream(90_000);
    let t = 0;
    for (let seq = 65_530; seq < 65_546; seq++) {
      if (seq === 65_534 || seq === 65_540) continue; // two lost, one each side of the wrap
      s.add(rtp(seq, seq * 3000), (t += 33));
    }
    s.add(Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]), t); // a sender report
    expect(s.expected).toBe(16);
    expect(s.packets).toBe(14);
    expect(s.lost).toBe(2);
  });

  it('measures no jitter on an even stream and some on an uneven one (RFC 3550, in ms)', () => {
    const even = new ReceivedStream(90_000);
    const uneven = new ReceivedStream(90_000);
    for (let i = 0; i < 200; i++) {
      even.add(rtp(i, i * 3000), i * (1000 / 30));
      uneven.add(rtp(i, i * 3000), i * (1000 / 30) + (i % 2 === 0 ? 0 : 10));
    }
    expect(even.jitterMs).toBeLessThan(0.01);
    // Every other packet 10 ms late: |D| is 10 ms each time, so J tends to 10 ms.
    expect(uneven.jitterMs).toBeGreaterThan(9);
    expect(uneven.jitterMs).toBeLessThan(10.01);
  });

  it('takes nearest-rank quantiles and prints - where a row has no values', () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([5, 1, 3, 2, 4], 0.99)).toBe(5);
    expect(quantile([7], 0.5)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
    const r: LoadTestResult = {
      url: 'http://x',
      room: 'r',
      seconds: 1,
      videoKbps: 100,
      publishers: { wanted: 1, joinMs: [], failures: ['publisher p: HTTP 404'], packetsSent: 0 },
      subscribers: { wanted: 0, results: [], failures: [] },
    };
    const lines = formatLoadTest(r).split('\n');
    expect(lines[1]).toBe('publishers 0/1 joined, subscribers 0/0 joined; packets sent 0, received 0');
    expect(
      lines
        .find((l) => l.startsWith('packets lost (%)'))!
        .split(/\s{2,}/)
        .slice(1),
    ).toEqual(['-', '-', '-', '-']);
    expect(lines).toContain('failed: publisher p: HTTP 404');
  });
});
