import { describe, expect, it } from 'vitest';
import { handoverReply, resumeSubject, unheard } from '../../src/api/chorus/rtc-handover.js';

const at = (...heard: string[]): Array<{ heard: string }> => heard.map((h) => ({ heard: h }));

describe('a session moving between nodes', () => {
  it('drops from what the new node heard early exactly what the old one heard last', () => {
    // The old node heard a..d; the new one started listening at c.
    expect(unheard(at('c', 'd', 'e', 'f'), ['a', 'b', 'c', 'd'])).toEqual(at('e', 'f'));
    // No overlap: all of it is new.
    expect(unheard(at('e', 'f'), ['a', 'b', 'c', 'd'])).toEqual(at('e', 'f'));
    // All of it heard there too.
    expect(unheard(at('c', 'd'), ['a', 'b', 'c', 'd'])).toEqual([]);
    // Nothing heard early, or nothing heard there.
    expect(unheard([], ['a'])).toEqual([]);
    expect(unheard(at('a'), [])).toEqual(at('a'));
    // The same message twice (say the same data sent again): the longest overlap counts.
    expect(unheard(at('x', 'x', 'y'), ['a', 'x', 'x'])).toEqual(at('y'));
    expect(unheard(at('x', 'y'), ['a', 'x', 'x'])).toEqual(at('y'));
    // Matching only in the middle is no overlap (the old node's last messages must be the start).
    expect(unheard(at('b', 'z'), ['a', 'b', 'c'])).toEqual(at('b', 'z'));
  });

  it('names the subject by a hash of the resume token, never the token itself', () => {
    const token = 'Z8i0T7bniVkSOLY0szjm0rhj';
    const subject = resumeSubject(token);
    expect(subject).toMatch(/^chorus\.rtc\.resume\.[0-9a-f]{64}$/);
    expect(subject).not.toContain(token);
    expect(resumeSubject('another')).not.toBe(subject);
  });

  it('refuses a malformed answer from the holder', () => {
    expect(handoverReply.safeParse({ ok: true, seq: -1, heard: [] }).success).toBe(false);
    expect(handoverReply.safeParse({ ok: true, seq: 3 }).success).toBe(false);
    expect(
      handoverReply.safeParse({ ok: true, seq: 3, heard: [], missed: [{ seq: 0, text: '{}' }] }).success,
    ).toBe(false);
    expect(
      handoverReply.safeParse({ ok: true, seq: 3, heard: ['h'], missed: [{ seq: 3, text: '{}' }] }).success,
    ).toBe(true);
    expect(handoverReply.safeParse({ ok: false }).success).toBe(false);
  });
});
