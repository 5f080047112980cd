import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChallengeBook } from '../../src/api/voip/challenge-book.js';
import { newChallenge } from '../../src/api/voip/pkey.js';
import { LmdbStore } from '../../src/ports/store/lmdb-store.js';

const dir = mkdtempSync(join(tmpdir(), 'chorus-challenges-'));
const store = new LmdbStore(dir);
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const yes = () => true;

describe('ChallengeBook', () => {
  it('expires tickets and peer challenges', async () => {
    let now = 1000;
    const book = new ChallengeBook(store, 10_000, 2_000, () => now);
    const ticket = await book.issueTicket('k1');
    await book.expect('e1', 'c1', 'c1');
    expect(await book.currentTicket('k1')).toBe(ticket);
    now += 2_001;
    expect(await book.take('e1', 'c1')).toBeUndefined();
    now += 8_000;
    expect(await book.spendTicket('k1', 'upCall', yes)).toBe(false);
  });

  it('spends a ticket once per use, and entirely on newCall; only what the check accepts', async () => {
    const book = new ChallengeBook(store, 10_000, 2_000);
    const ticket = await book.issueTicket('k2');
    expect(await book.spendTicket('k2', 'upCall', (t) => t !== ticket)).toBe(false);
    expect(await book.spendTicket('k2', 'upCall', (t) => t === ticket)).toBe(true);
    expect(await book.spendTicket('k2', 'upCall', yes)).toBe(false);
    expect(await book.spendTicket('k2', 'newCall', yes)).toBe(true);
    expect(await book.spendTicket('k2', 'joinCall', yes)).toBe(false);
  });

  it('lets one of two books on one store spend a ticket for a use at the same instant', async () => {
    const a = new ChallengeBook(store, 10_000, 2_000);
    const b = new ChallengeBook(store, 10_000, 2_000);
    await a.issueTicket('k3');
    const won = await Promise.all([a.spendTicket('k3', 'newCall', yes), b.spendTicket('k3', 'newCall', yes)]);
    expect(won.filter(Boolean)).toHaveLength(1);
  });

  it('binds peer challenges to the pair and uses them once', async () => {
    const book = new ChallengeBook(store, 10_000, 2_000);
    await book.expect('e4', 'c4', 'c1');
    expect(await book.take('e4', 'mallory')).toBeUndefined();
    expect(await book.take('e4', 'c4')).toBe('c1');
    expect(await book.take('e4', 'c4')).toBeUndefined();
  });

  it('sweeps records dead for over a minute', async () => {
    let now = 1_000_000;
    const book = new ChallengeBook(store, 10_000, 2_000, () => now);
    await book.issueTicket('k5');
    now += 80_000;
    await book.sweep();
    now -= 80_000;
    expect(await book.currentTicket('k5')).toBeUndefined();
  });

  it('draws server challenges from all 52 letters', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) for (const ch of newChallenge()) seen.add(ch);
    expect(seen.size).toBe(52);
  });
});
