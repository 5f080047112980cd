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

function table(staleMs = 6000) {
  const events: string[] = [];
  const t = new MemberTable(
    node('a'),
    staleMs,
    (e, info) => events.push(`${e} ${info.id} ${info.instance}`),
    0,
  );
  return { t, events };
}

describe('MemberTable', () => {
  it('sees a node join once and drops it once after staleMs without a heartbeat', () => {
    const { t, events } = table();
    t.seen(node('b'), 100);
    t.seen(node('b'), 2000);
    t.seen(node('a', 'a-1'), 2000);
    expect(
      t
        .nodes()
        .map((n) => n.id)
        .sort(),
    ).toEqual(['a', 'b']);
    t.seen(node('a', 'a-1'), 7000);
    t.sweep(7000);
    expect(t.has('b')).toBe(true);
    t.seen(node('a', 'a-1'), 8100);
    t.sweep(8100);
    t.sweep(9000);
    expect(t.has('b')).toBe(false);
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
    const { t, events } = table();
    t.seen(node('b'), 100);
    // Our link is down from here: neither our beats nor theirs arrive.
    t.sweep(20_000);
    expect(t.has('b')).toBe(true);
    t.seen(node('a', 'a-1'), 20_500); // back
    t.sweep(21_000);
    expect(t.has('b')).toBe(true);
    t.seen(node('a', 'a-1'), 26_600);
    t.sweep(26_600);
    expect(t.has('b')).toBe(false);
    expect(events).toEqual(['nodeJoined b b-1', 'nodeGone b b-1']);
  });

  it('ignores an entry under its own id from another instance', () => {
    const { t, events } = table();
    t.seen(node('a', 'intruder'), 100);
    expect(events).toEqual([]);
    expect(t.nodes()).toHaveLength(1);
    expect(t.nodes()[0]?.instance).toBe('a-1');
  });
});
