import { describe, expect, it } from 'vitest';
import { BYTES_TOPIC, decodeData, encodeData } from '../../sdk/src/data-payload.js';
import { SpeakerLevels, sameSpeakers } from '../../sdk/src/speaker-levels.js';

describe('SDK data payloads', () => {
  it('strings travel as they are, with or without a topic', () => {
    expect(encodeData('hello')).toEqual({ payload: 'hello' });
    expect(encodeData('hello', 'chat')).toEqual({ payload: 'hello', topic: 'chat' });
    expect(decodeData('hello', 'chat')).toEqual({ data: 'hello', topic: 'chat' });
    expect(decodeData('hello', undefined)).toEqual({ data: 'hello', topic: undefined });
  });

  it('bytes survive the text protocol (every byte value, and more than one chunk)', () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
    const wire = encodeData(bytes, 'file');
    expect(wire.topic).toBe(`${BYTES_TOPIC}file`);
    expect(wire.payload).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const back = decodeData(wire.payload, wire.topic);
    expect(back.topic).toBe('file');
    expect(back.data).toEqual(bytes);
    expect(decodeData(encodeData(new Uint8Array([1, 2])).payload, BYTES_TOPIC)).toEqual({
      data: new Uint8Array([1, 2]),
      topic: undefined,
    });
  });

  it('a marked topic whose payload is not base64 is handed over untouched', () => {
    expect(decodeData('not base64 !!', `${BYTES_TOPIC}x`)).toEqual({
      data: 'not base64 !!',
      topic: `${BYTES_TOPIC}x`,
    });
  });
});

describe('SDK speaker levels', () => {
  const round = (levels: Record<string, number>) => new Map(Object.entries(levels));

  it('the loud speak, loudest first; the silent do not', () => {
    const s = new SpeakerLevels();
    const out = s.update(round({ ada: 0.3, grace: 0.6, linus: 0 }));
    expect(out.map((x) => x.identity)).toEqual(['grace', 'ada']);
  });

  it('hysteresis: a short dip between words does not drop a speaker, lasting silence does', () => {
    const s = new SpeakerLevels({ startLevel: 0.05, stopLevel: 0.02, smoothing: 0.5 });
    expect(s.update(round({ ada: 0.2 })).map((x) => x.identity)).toEqual(['ada']);
    // One silent sample: smoothed 0.1, still above the stop level.
    expect(s.update(round({ ada: 0 })).map((x) => x.identity)).toEqual(['ada']);
    let out = s.update(round({ ada: 0 }));
    for (let i = 0; i < 5; i++) out = s.update(round({ ada: 0 }));
    expect(out).toEqual([]);
  });

  it('someone missing from a round (left, or no audio any more) fades out and is forgotten', () => {
    const s = new SpeakerLevels();
    s.update(round({ ada: 0.5 }));
    let out = s.update(round({}));
    expect(out.map((x) => x.identity)).toEqual(['ada']);
    for (let i = 0; i < 20; i++) out = s.update(round({}));
    expect(out).toEqual([]);
  });

  it('levels outside 0..1 are clamped', () => {
    const s = new SpeakerLevels();
    expect(s.update(round({ ada: 7 }))[0]!.level).toBe(1);
    expect(s.update(round({ bob: -3 }))).toHaveLength(1);
  });

  it('sameSpeakers compares identities in order', () => {
    expect(sameSpeakers([{ identity: 'a', level: 0.1 }], [{ identity: 'a', level: 0.9 }])).toBe(true);
    expect(
      sameSpeakers(
        [
          { identity: 'a', level: 1 },
          { identity: 'b', level: 0.5 },
        ],
        [
          { identity: 'b', level: 1 },
          { identity: 'a', level: 0.5 },
        ],
      ),
    ).toBe(false);
    expect(sameSpeakers([], [{ identity: 'a', level: 0 }])).toBe(false);
  });
});
