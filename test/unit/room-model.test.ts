import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { CallBook } from '../../src/core/call-book.js';
import { ChorusError } from '../../src/core/errors.js';
import { RoomRegistry } from '../../src/core/room-registry.js';
import { asParticipantId as pid, asRoomId, type RoomOptions } from '../../src/core/room-types.js';

const silent = pino({ level: 'silent' });
const group = (over: Partial<RoomOptions<null>> = {}): RoomOptions<null> => ({
  kind: 'group',
  metadata: null,
  ...over,
});

describe('Room, Participant, Track', () => {
  it('keeps membership: join is idempotent, leave removes, publishers are those with tracks', () => {
    const rooms = new RoomRegistry(silent);
    const room = rooms.open(asRoomId('r1'), group());
    const joined: string[] = [];
    room.events.on('participantJoined', (e) => joined.push(e.participant.id));
    const alice = room.join(pid('alice'));
    expect(room.join(pid('alice'))).toBe(alice);
    room.join(pid('bob'));
    expect(joined).toEqual(['alice', 'bob']);
    alice.publish({ id: 'a', kind: 'audio', source: 'microphone', codec: 'opus' });
    expect(room.publishers()).toEqual(['alice']);
    room.leave(pid('alice'));
    expect(alice.joined).toBe(false);
    expect(room.participant(pid('alice'))).toBeUndefined();
    expect(room.size).toBe(1);
    expect(room.publishers()).toEqual([]);
  });

  it('refuses a join past capacity with ChorusError capacity, and any join once closed', () => {
    const rooms = new RoomRegistry(silent);
    const room = rooms.open(asRoomId('r'), group({ capacity: 2 }));
    room.join(pid('a'));
    room.join(pid('b'));
    expect(room.full).toBe(true);
    expect(room.join(pid('a')).id).toBe('a'); // already in: not a new member
    expect(() => room.join(pid('c'))).toThrow(ChorusError);
    try {
      room.join(pid('c'));
    } catch (err) {
      expect((err as ChorusError).code).toBe('capacity');
    }
    room.leave(pid('b'));
    expect(room.join(pid('c')).id).toBe('c');
    room.close();
    try {
      room.join(pid('d'));
      expect.unreachable();
    } catch (err) {
      expect((err as ChorusError).code).toBe('not_found');
    }
  });

  it('closes when empty if asked to, and the registry forgets it', () => {
    const rooms = new RoomRegistry(silent);
    const keep = rooms.open(asRoomId('keep'), group());
    const drop = rooms.open(asRoomId('drop'), group({ closeWhenEmpty: true }));
    for (const r of [keep, drop]) r.join(pid('x'));
    for (const r of [keep, drop]) r.leave(pid('x'));
    expect(keep.closed).toBe(false);
    expect(drop.closed).toBe(true);
    expect(rooms.get('group', 'drop')).toBeUndefined();
    expect(rooms.get('group', 'keep')).toBe(keep);
    // A new room of the same id is a new object.
    const again = rooms.open(asRoomId('drop'), group({ closeWhenEmpty: true }));
    expect(again).not.toBe(drop);
  });

  it('lets an idle participant leave by itself when the room says so', () => {
    const rooms = new RoomRegistry(silent);
    const room = rooms.open(asRoomId('idle'), group({ leaveWhenIdle: true, closeWhenEmpty: true }));
    const p = room.join(pid('p'));
    const mic = p.publish({ id: 'mic', kind: 'audio', source: 'microphone' });
    p.subscribe('mix');
    mic.close('upload ended');
    expect(p.joined).toBe(true); // still receiving the mix
    p.unsubscribe('mix', 'listener gone');
    expect(p.joined).toBe(false);
    expect(room.closed).toBe(true);
  });

  it('keeps rooms of different kinds apart; create refuses a duplicate with conflict', () => {
    const rooms = new RoomRegistry(silent);
    const a = rooms.open(asRoomId('same'), group());
    const b = rooms.open(asRoomId('same'), { kind: 'conversation', metadata: null });
    expect(a).not.toBe(b);
    expect(rooms.count('group')).toBe(1);
    expect(rooms.count()).toBe(2);
    expect(() => rooms.create(asRoomId('same'), group())).toThrow(
      expect.objectContaining({ code: 'conflict' }),
    );
    expect(rooms.list('conversation')).toEqual([b]);
  });

  it('runs the closing cascade in order: tracks end, subscriptions drop, participants leave, room closes', () => {
    const rooms = new RoomRegistry(silent);
    const room = rooms.open(asRoomId('cascade'), group());
    const order: string[] = [];
    const alice = room.join(pid('alice'));
    const bob = room.join(pid('bob'));
    const cam = alice.publish({ id: 'cam', kind: 'video', source: 'camera' });
    bob.subscribe('alice');
    // What media does: the leg carrying a track stops when the track ends.
    cam.events.on('ended', (e) => order.push(`leg of ${e.track.id} stops (${e.reason})`));
    room.events.on('trackEnded', (e) => order.push(`room: ${e.track.id} ended`));
    room.events.on('unsubscribed', (e) => order.push(`room: ${e.participant.id} unsubscribed ${e.source}`));
    room.events.on('participantLeft', (e) => order.push(`room: ${e.participant.id} left`));
    alice.events.on('left', () => order.push('alice: left'));
    room.events.on('close', (e) => order.push(`room: close (${e.reason})`));
    room.observer.on('close', () => order.push('observer: close'));

    room.close('admin closed it');
    expect(order).toEqual([
      'leg of cam stops (admin closed it)',
      'room: cam ended',
      'alice: left',
      'room: alice left',
      'room: bob unsubscribed alice',
      'room: bob left',
      'room: close (admin closed it)',
      'observer: close',
    ]);
    expect(cam.closed && !alice.joined && !bob.joined && room.closed).toBe(true);
    expect(rooms.get('group', 'cascade')).toBeUndefined();
  });

  it('closes idempotently: a second close (of any object) emits nothing', () => {
    const rooms = new RoomRegistry(silent);
    const room = rooms.open(asRoomId('once'), group());
    const p = room.join(pid('p'));
    const t = p.publish({ id: 't', kind: 'audio', source: 'microphone' });
    const seen = { ended: 0, left: 0, close: 0 };
    t.events.on('ended', () => seen.ended++);
    p.events.on('left', () => seen.left++);
    room.events.on('close', () => seen.close++);
    t.close();
    t.close();
    p.close();
    p.leave();
    room.close();
    room.close();
    expect(seen).toEqual({ ended: 1, left: 1, close: 1 });
    expect(t.closed && p.closed && room.closed).toBe(true);
  });

  it('replaces a track published again under the same id', () => {
    const room = new RoomRegistry(silent).open(asRoomId('r'), group());
    const p = room.join(pid('p'));
    const first = p.publish({ id: 'mic', kind: 'audio', source: 'microphone' });
    const reasons: string[] = [];
    first.events.on('ended', (e) => reasons.push(e.reason));
    const second = p.publish({ id: 'mic', kind: 'audio', source: 'microphone' });
    expect(reasons).toEqual(['replaced']);
    expect(p.tracks.get('mic')).toBe(second);
    expect(p.trackFrom('microphone')).toBe(second);
  });

  it('a throwing listener is logged, and the cascade still completes', () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
    const rooms = new RoomRegistry(log);
    const room = rooms.open(asRoomId('throws'), group());
    const p = room.join(pid('p'));
    const t = p.publish({ id: 't', kind: 'audio', source: 'microphone' });
    const stopped = vi.fn();
    t.events.on('ended', () => {
      throw new Error('a broken leg');
    });
    t.events.on('ended', stopped);
    room.events.on('participantLeft', () => {
      throw new Error('a broken surface');
    });
    const closed = vi.fn();
    room.events.on('close', closed);
    expect(() => room.close()).not.toThrow();
    expect(stopped).toHaveBeenCalledOnce();
    expect(closed).toHaveBeenCalledOnce();
    expect(rooms.size).toBe(0);
    expect(lines.filter((l) => l.msg === 'event listener threw')).toHaveLength(2);
  });

  it('a participant that left cannot publish', () => {
    const room = new RoomRegistry(silent).open(asRoomId('r'), group());
    const p = room.join(pid('p'));
    p.leave();
    expect(() => p.publish({ id: 'x', kind: 'audio', source: 'microphone' })).toThrow(
      expect.objectContaining({ code: 'not_found' }),
    );
    expect(p.subscribe('mix')).toBe(false);
  });

  it('the registry observer sees new rooms', () => {
    const rooms = new RoomRegistry(silent);
    const seen: string[] = [];
    rooms.observer.on('newroom', (e) => seen.push(`${e.room.kind}:${e.room.id}`));
    rooms.open(asRoomId('a'), group());
    rooms.open(asRoomId('a'), group());
    rooms.open(asRoomId('b'), { kind: 'conference', metadata: null });
    expect(seen).toEqual(['group:a', 'conference:b']);
    rooms.closeAll('shutdown');
    expect(rooms.size).toBe(0);
  });
});

describe('Call: a room of two with a state', () => {
  const book = (onEnd = vi.fn()) => {
    const rooms = new RoomRegistry(silent);
    return {
      rooms,
      onEnd,
      calls: new CallBook(rooms, { ringTimeoutMs: 60_000, idleTimeoutMs: 60_000, onEnd }),
    };
  };

  it('rings, accepts, and ends: the room closes (its media with it) before onEnd', () => {
    const order: string[] = [];
    const { rooms, calls } = book(vi.fn(() => order.push('onEnd')));
    const call = calls.ring('a', 'b');
    expect(call.state).toBe('ringing');
    expect(call.room.kind).toBe('call');
    expect(rooms.count('call')).toBe(1);
    expect(calls.accept('b', 'a')).toBe(call);
    expect(call.state).toBe('accepted');
    const mic = call.room.join(pid('a')).publish({ id: 'mic', kind: 'audio', source: 'microphone' });
    mic.events.on('ended', () => order.push('upload stops'));
    call.room.events.on('close', () => order.push('mixer stops'));
    calls.end(call, 'hangup');
    expect(order).toEqual(['upload stops', 'mixer stops', 'onEnd']);
    expect(call.state).toBe('ended');
    expect(calls.between('a', 'b')).toBeUndefined();
    expect(rooms.count('call')).toBe(0);
    calls.end(call, 'hangup');
    call.close();
    expect(order).toHaveLength(3);
    expect(call.closed).toBe(true);
  });

  it('a call is two at most; a new call between the pair replaces the old one', () => {
    const ended: string[] = [];
    const { calls } = book(vi.fn((_c, reason: string) => ended.push(reason)));
    const first = calls.ring('a', 'b');
    first.room.join(pid('a'));
    first.room.join(pid('b'));
    expect(() => first.room.join(pid('c'))).toThrow(expect.objectContaining({ code: 'capacity' }));
    const second = calls.ring('b', 'a');
    expect(ended).toEqual(['replaced']);
    expect(first.room.closed).toBe(true);
    expect(second.room).not.toBe(first.room);
    expect(calls.between('a', 'b')).toBe(second);
    second.close(); // a hangup, as CallBook.end(second, 'hangup')
    expect(ended).toEqual(['replaced', 'hangup']);
    expect(second.room.closed && calls.between('a', 'b') === undefined).toBe(true);
  });

  it('times out unanswered, and idles out only while nobody has media in its room', () => {
    vi.useFakeTimers();
    try {
      const ended: string[] = [];
      const rooms = new RoomRegistry(silent);
      const calls = new CallBook(rooms, {
        ringTimeoutMs: 1000,
        idleTimeoutMs: 500,
        onEnd: (_c, reason) => ended.push(reason),
      });
      calls.ring('a', 'b');
      vi.advanceTimersByTime(1000);
      expect(ended).toEqual(['ring-timeout']);

      const call = calls.ring('a', 'b');
      calls.accept('b', 'a');
      const mic = call.room.join(pid('a')).publish({ id: 'mic', kind: 'audio', source: 'microphone' });
      vi.advanceTimersByTime(5000);
      expect(call.state).toBe('accepted'); // media open: no idle clock
      mic.close('upload ended'); // the idle participant leaves; the room is empty
      expect(call.room.size).toBe(0);
      vi.advanceTimersByTime(499);
      expect(call.state).toBe('accepted');
      vi.advanceTimersByTime(1);
      expect(ended).toEqual(['ring-timeout', 'idle']);
      expect(call.room.closed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('only the callee accepts or rejects a ringing call', () => {
    const { calls } = book();
    const call = calls.ring('a', 'b');
    expect(calls.accept('a', 'b')).toBeUndefined();
    expect(calls.reject('b', 'a')).toBe(call);
    expect(call.state).toBe('rejected');
    expect(calls.accept('b', 'a')).toBeUndefined();
  });
});
