import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { eventually } from '../fixtures/ws-client.js';
import { MemberNotices, type MemberNoticeBatch } from '../../src/api/voip/member-notices.js';

interface Room {
  members: string[] | undefined;
}

function notices(windowMs = 10_000, changesPerTurn?: number) {
  const sent: MemberNoticeBatch[] = [];
  const n = new MemberNotices<Room>({
    windowMs,
    ...(changesPerTurn ? { changesPerTurn } : {}),
    members: (room) => room.members,
    send: (_room, batch) => void sent.push(batch),
    log: pino({ level: 'silent' }),
  });
  return { n, sent };
}

describe('MemberNotices: a room`s setAudioConf changes, one batch per window', () => {
  it('sends a burst of N changes as one batch to the members then, each member once with its latest state', () => {
    const { n, sent } = notices();
    const room: Room = { members: ['s'] };
    for (let i = 0; i < 100; i++) n.change(room, `l${i}`, false, true);
    n.change(room, 's', true, false);
    n.change(room, 's', true, true); // the speaker's mic, then headset: one notice
    room.members = ['s', ...Array.from({ length: 100 }, (_, i) => `l${i}`)];
    n.flush(room);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.to).toEqual(room.members);
    expect(sent[0]!.changes).toHaveLength(101);
    expect(sent[0]!.changes.find((c) => c.id === 's')).toEqual({ id: 's', mic: true, hds: true });
    // All leave at once but one: one batch, to the one left.
    for (let i = 0; i < 100; i++) n.change(room, `l${i}`, false, false);
    room.members = ['s'];
    n.flush(room);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.to).toEqual(['s']);
    expect(sent[1]!.changes.every((c) => !c.mic && !c.hds)).toBe(true);
    n.close();
  });

  it('sends nothing for a change that ends where the last notice left it, nor to a room gone', () => {
    const { n, sent } = notices();
    const room: Room = { members: ['a'] };
    n.change(room, 'b', false, true);
    n.change(room, 'b', false, false); // joined and left within the window
    n.flush(room);
    expect(sent).toHaveLength(0);
    n.change(room, 'c', true, false);
    n.flush(room);
    n.change(room, 'c', false, false);
    n.change(room, 'c', true, false); // dropped and came back: as last told
    n.flush(room);
    expect(sent.map((b) => b.changes)).toEqual([[{ id: 'c', mic: true, hds: false }]]);
    n.change(room, 'c', false, false);
    room.members = undefined; // the room closed meanwhile
    n.flush(room);
    expect(sent).toHaveLength(1);
    n.close();
  });

  it('sends a batch larger than a turn`s share in parts, one per turn, in order, behind the parts before it', async () => {
    const { n, sent } = notices(10_000, 100);
    const room: Room = { members: ['s'] };
    const other: Room = { members: ['t'] };
    for (let i = 0; i < 250; i++) n.change(room, `l${i}`, false, false);
    for (let i = 0; i < 250; i++) n.change(room, `l${i}`, false, true);
    room.members = ['s', 'x'];
    n.flush(room);
    // The first part now; the others wait for later turns.
    expect(sent.map((b) => b.changes.length)).toEqual([100]);
    n.change(other, 'u', true, false);
    n.flush(other); // queued behind the room's parts, not before them
    expect(sent).toHaveLength(1);
    const next = () => new Promise((r) => setImmediate(r));
    await next();
    expect(sent.map((b) => b.changes.length)).toEqual([100, 100]);
    await eventually(() => sent.length === 4, 30_000, 'every part sent');
    expect(sent.map((b) => b.changes.length)).toEqual([100, 100, 50, 1]);
    expect(sent.slice(0, 3).every((b) => b.to.join() === 's,x')).toBe(true);
    expect(sent[3]).toEqual({ to: ['t'], changes: [{ id: 'u', mic: true, hds: false }] });
    // Every change once, in the order they came.
    expect(sent.slice(0, 3).flatMap((b) => b.changes.map((c) => c.id))).toEqual(
      Array.from({ length: 250 }, (_, i) => `l${i}`),
    );
    n.close();
  });

  it('flushes by itself after the window', async () => {
    const { n, sent } = notices(20);
    const room: Room = { members: ['a', 'b'] };
    n.change(room, 'b', true, false);
    expect(sent).toHaveLength(0);
    await eventually(() => sent.length > 0, 30_000, 'the window to pass and the batch to go out');
    expect(sent).toEqual([{ to: ['a', 'b'], changes: [{ id: 'b', mic: true, hds: false }] }]);
    n.close();
  });
});
