import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Track } from 'node-datachannel';
import { MAX_PADDING_BPS, PADDING_TICK_MS, PaddingSender } from '../../src/media/webrtc/padding-sender.js';
import { PADDING_PACKET_BYTES, isPaddingOnly } from '../../src/media/webrtc/padding-packet.js';
import type { ForwardTarget } from '../../src/media/webrtc/published-track.js';

/** A leg whose native send records what it was given (a copy: the sender reuses its buffer). */
function leg(rtx = true): { target: ForwardTarget; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const track = { sendMessageBinary: (b: Buffer) => sent.push(Buffer.from(b)) } as unknown as Track;
  const target: ForwardTarget = {
    track,
    payloadType: 100,
    open: true,
    subscriber: 'u',
    report: { fractionLost: 0, cumulativeLost: 0, jitter: 0, at: 0 },
    ...(rtx ? { rtx: { payloadType: 101, seq: 65_534 } } : {}),
  };
  return { target, sent };
}

const log = pino({ level: 'silent' });

describe('PaddingSender', () => {
  it('sends each leg its rate as padding-only packets on its RTX SSRC, payload type and sequence numbers', () => {
    const s = new PaddingSender(log);
    const a = leg();
    // The clock the padding starts from is the test's: no real time between (a loaded CI
    // box once took long enough between two Date.now() calls to owe one packet more).
    let now = Date.now();
    s.forLeg(a.target, 777).setRate(400_000, now);
    expect(s.padding).toBe(1);
    // One second in ticks: 400 kbit/s is 50,000 bytes.
    for (let i = 0; i < 1000 / PADDING_TICK_MS; i++) s.send((now += PADDING_TICK_MS));
    const bytes = a.sent.length * PADDING_PACKET_BYTES;
    expect(bytes).toBeGreaterThan(50_000 - 2 * PADDING_PACKET_BYTES);
    expect(bytes).toBeLessThanOrEqual(50_000);
    expect(s.bytes).toBe(bytes);
    for (const p of a.sent) {
      expect(isPaddingOnly(p)).toBe(true);
      expect(p[1]).toBe(101);
      expect(p.readUInt32BE(8)).toBe(777);
    }
    // Its RTX sequence numbers, wrapping.
    expect(a.sent.slice(0, 3).map((p) => p.readUInt16BE(2))).toEqual([65_534, 65_535, 0]);
    expect(a.target.rtx!.seq).toBe((65_534 + a.sent.length) & 0xffff);
    s.close();
  });

  it('pads a slow leg too: its packets come every few ticks', () => {
    const s = new PaddingSender(log);
    const a = leg();
    let now = Date.now();
    s.forLeg(a.target, 1).setRate(32_000, now);
    for (let i = 0; i < 1000 / PADDING_TICK_MS; i++) s.send((now += PADDING_TICK_MS));
    // 32 kbit/s: 4,000 bytes a second.
    expect(a.sent.length * PADDING_PACKET_BYTES).toBeGreaterThan(4_000 - 2 * PADDING_PACKET_BYTES);
    expect(a.sent.length * PADDING_PACKET_BYTES).toBeLessThanOrEqual(4_000);
    s.close();
  });

  it('keeps all legs together under MAX_PADDING_BPS, and a late tick does not burst', () => {
    const s = new PaddingSender(log);
    const legs = Array.from({ length: 40 }, () => leg());
    let now = Date.now();
    for (const l of legs) s.forLeg(l.target, 1).setRate(2_500_000, now); // 100 Mbit/s asked
    for (let i = 0; i < 1000 / PADDING_TICK_MS; i++) s.send((now += PADDING_TICK_MS));
    const total = legs.reduce((n, l) => n + l.sent.length, 0) * PADDING_PACKET_BYTES;
    expect(total).toBeLessThanOrEqual(MAX_PADDING_BPS / 8);
    expect(total).toBeGreaterThan((MAX_PADDING_BPS / 8) * 0.9);
    // A tick ten seconds late sends at most a few ticks' worth.
    const before = s.packets;
    s.send(now + 10_000);
    expect((s.packets - before) * PADDING_PACKET_BYTES).toBeLessThanOrEqual((MAX_PADDING_BPS / 8) * 0.06 + 1);
    s.close();
  });

  it('runs no timer while no leg pads; a leg without RTX, closed, or set to 0 gets nothing', () => {
    const s = new PaddingSender(log);
    const plain = leg(false);
    s.forLeg(plain.target, 1).setRate(500_000);
    expect(s.padding).toBe(0);
    const a = leg();
    const pad = s.forLeg(a.target, 1);
    pad.setRate(500_000);
    expect(s.padding).toBe(1);
    pad.setRate(0);
    expect(s.padding).toBe(0);
    const b = leg();
    s.forLeg(b.target, 1).setRate(500_000);
    b.target.open = false;
    let now = Date.now();
    for (let i = 0; i < 10; i++) s.send((now += PADDING_TICK_MS));
    expect(b.sent).toHaveLength(0);
    expect(s.padding).toBe(0);
    expect(plain.sent).toHaveLength(0);
    // A send that throws is counted, not thrown.
    const c = leg();
    (c.target.track as unknown as { sendMessageBinary: () => void }).sendMessageBinary = () => {
      throw new Error('closed');
    };
    s.forLeg(c.target, 1).setRate(500_000);
    expect(() => s.send(now + PADDING_TICK_MS)).not.toThrow();
    expect(s.sendErrors).toBe(1);
    s.close();
    expect(s.padding).toBe(0);
  });
});
