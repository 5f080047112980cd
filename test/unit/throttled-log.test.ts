import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { clipClientText, ThrottledLog } from '../../src/lib/throttled-log.js';

describe('ThrottledLog', () => {
  it('writes at most perSecond lines a second and reports the suppressed count on the next', () => {
    const lines: Array<{ level: number; msg: string; suppressed?: number }> = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as never) });
    let now = 1_000;
    const throttled = new ThrottledLog(log, 3, () => now);
    for (let i = 0; i < 10; i++) throttled.warn({ i }, 'bad frame');
    expect(lines.length).toBe(3);
    expect(throttled.suppressed).toBe(7);
    now += 1000;
    throttled.warn({}, 'bad frame');
    expect(lines.length).toBe(4);
    expect(lines[3]).toMatchObject({ level: 40, msg: 'bad frame', suppressed: 7 });
    throttled.debug({}, 'gone');
    expect(lines[4]).toMatchObject({ level: 20, msg: 'gone' });
    expect(lines[4]!.suppressed).toBeUndefined();
  });

  it('counts nothing for a level that is off', () => {
    const lines: string[] = [];
    const throttled = new ThrottledLog(
      pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) }),
      1,
    );
    for (let i = 0; i < 5; i++) throttled.debug({}, 'quiet');
    expect(lines).toEqual([]);
    expect(throttled.suppressed).toBe(0);
  });

  it('clips client text to 200 characters', () => {
    expect(clipClientText('short')).toBe('short');
    const long = clipClientText('x'.repeat(60_000));
    expect(long.length).toBeLessThan(230);
    expect(long).toContain('60000 chars');
  });
});
