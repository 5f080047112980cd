import { describe, expect, it } from 'vitest';
import { MemberTable } from '../../src/ports/membership/member-table.js';
import type { NodeInfo } from '../../src/ports/membership/membership.js';

const node = (id: string, instance = `${id}-1`): NodeInfo => ({
  id,
  instance,
  load: { connections: 0, eventLoopUtilization: 0 },
  version: '0.1.0',
  protocol: 1,
  startedAt: '2026-11-29T00:00:00.000Z',
});

/** Stale after 6 s; our own heartbeats every 2 s, a gap over 3 s is an interruption. */
function table() {
  const events: string[] = [];
  const t = new MemberTable(
    node('a'),
    6000,
    (e, info) => events.push(`${e} ${info.id} ${info.instance}`),
    0,
    3000,
  );
  const own = (at: number): void => t.seen(node('a'), at);
  return { t, events, own };
}

describe('MemberTable', () => {
  it('sees a node join once and drops it once, when our own heartbeat comes back over 6 s after its last', () => {
    const { t, events, own } = table();
    t.seen(node('b'), 100);
    own(2000);
    t.seen(node('b'), 2100);
    expect(
      t
        .nodes()
        .map((n) => n.id)
        .sort(),
    ).toEqual(['a', 'b']);
    // b dies after 2100; we keep beating every 2 s.
    own(4000);
    own(6000);
    own(8000);
    t.sweep(8050);
    expect(t.has('b')).toBe(true); // 5.9 s
    own(10_000); // 7.9 s since b's last
    expect(t.has('b')).toBe(false);
    own(12_000);
    expect(events).toEqual(['nodeJoined b b-1', 'nodeGone b b-1']);
  });

  it('treats a new instance under a known id as the old one gone and a new one joined', () => {
    const { t, events } = table();
    t.seen(node('b', 'b-1'), 100);
    t.seen(node('b', 'b-2'), 200);
    expect(events).toEqual(['nodeJoined b b-1', 'nodeGone b b-1', 'nodeJoined b b-2']);
    expect(t.nodes().find((n) => n.id === 'b')?.instance).toBe('b-2');
  });

  it('drops a node whose entry was deleted, and ignores deletes of unknown ids and of itself', () => {
    const { t, events } = table();
    t.seen(node('b'), 100);
    t.left('b');
    t.left('b');
    t.left('zz');
    t.left('a');
    expect(events).toEqual(['nodeJoined b b-1', 'nodeGone b b-1']);
    expect(t.has('a')).toBe(true);
  });

  it('declares nobody gone while its own heartbeats do not come back, then gives everyone a fresh period', () => {
    const { t, events, own } = table();
    t.seen(node('b'), 1900);
    own(2000);
    // Our link is down from here: neither our beats nor theirs arrive, however long.
    t.sweep(3000);
    expect(t.paused).toBe(false);
    t.sweep(5100);
    expect(t.paused).toBe(true);
    t.sweep(30_000);
    expect(t.has('b')).toBe(true);
    own(30_500); // back: a fresh period for everyone
    expect(t.paused).toBe(false);
    expect(t.has('b')).toBe(true);
    own(32_500);
    own(34_500);
    expect(t.has('b')).toBe(true);
    own(36_600); // b not heard since we came back, 6.1 s ago
    expect(t.has('b')).toBe(false);
    expect(events).toEqual(['nodeJoined b b-1', 'nodeGone b b-1']);
  });

  it('does not drop a node whose last beat is a bit older than ours when a short outage ends', () => {
    const { t, own } = table();
    t.seen(node('b'), 100); // b beat just after our 0
    own(2000);
    // 4.5 s without anything; then our beat comes back first.
    own(6500);
    expect(t.has('b')).toBe(true);
  });

  it('ignores an entry under its own id from another instance', () => {
    const { t, events } = table();
    t.seen(node('a', 'intruder'), 100);
    expect(events).toEqual([]);
    expect(t.nodes()).toHaveLength(1);
    expect(t.nodes()[0]?.instance).toBe('a-1');
  });

  it('says how long ago each live node was heard from', () => {
    const { t, own } = table();
    t.seen(node('b'), 1000);
    own(1500);
    expect(t.heardMsAgo('b', 2000)).toBe(1000);
    expect(t.heardMsAgo('a', 2000)).toBe(500);
    expect(t.heardMsAgo('zz', 2000)).toBeUndefined();
  });
});
