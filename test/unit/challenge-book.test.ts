import { describe, expect, it } from 'vitest';
import { ChallengeBook } from '../../src/api/voip/challenge-book.js';
import { newChallenge } from '../../src/api/voip/pkey.js';

describe('ChallengeBook', () => {
  it('expires tickets and peer challenges', () => {
    let now = 1000;
    const book = new ChallengeBook(10_000, 2_000, () => now);
    const ticket = book.issueTicket('k');
    book.expect('e', 'c', 'c1');
    expect(book.ticketFor('k', 'upCall')).toBe(ticket);
    now += 2_001;
    expect(book.take('e', 'c')).toBeUndefined();
    now += 8_000;
    expect(book.ticketFor('k', 'upCall')).toBeUndefined();
  });

  it('spends a ticket once per use, and entirely on newCall', () => {
    const book = new ChallengeBook(10_000, 2_000);
    const ticket = book.issueTicket('k');
    book.spend('k', ticket, 'upCall');
    expect(book.ticketFor('k', 'upCall')).toBeUndefined();
    expect(book.ticketFor('k', 'joinCall')).toBe(ticket);
    book.spend('k', ticket, 'newCall');
    expect(book.ticketFor('k', 'joinCall')).toBeUndefined();
  });

  it('binds peer challenges to the pair and uses them once', () => {
    const book = new ChallengeBook(10_000, 2_000);
    book.expect('e', 'c', 'c1');
    expect(book.take('e', 'mallory')).toBeUndefined();
    expect(book.take('e', 'c')).toBe('c1');
    expect(book.take('e', 'c')).toBeUndefined();
  });

  it('draws server challenges from all 52 letters', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) for (const ch of newChallenge()) seen.add(ch);
    expect(seen.size).toBe(52);
  });
});
