import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Bus } from '../../src/ports/bus/bus.js';
import { LocalBus } from '../../src/ports/bus/local-bus.js';
import { Presence, type PresenceEndpoint } from '../../src/core/presence.js';
import { asUserId, type UserId } from '../../src/core/ids.js';

const silent = pino({ level: 'silent' });

/**
 * A LocalBus that counts what is asked of it. `reachesOtherNodes` is what the bus says of
 * itself; absent, it says nothing (as a bus that may reach other nodes).
 */
function spyBus(reachesOtherNodes?: boolean): {
  bus: Bus;
  calls: { publish: number; request: number; subscribe: number };
} {
  const inner = new LocalBus(silent);
  const calls = { publish: 0, request: 0, subscribe: 0 };
  const bus: Bus = {
    ...(reachesOtherNodes === undefined ? {} : { reachesOtherNodes }),
    publish: (subject, data) => {
      calls.publish++;
      inner.publish(subject, data);
    },
    subscribe: (subject, handler) => {
      calls.subscribe++;
      return inner.subscribe(subject, handler);
    },
    request: (subject, data, opts) => {
      calls.request++;
      return inner.request(subject, data, opts);
    },
    close: () => inner.close(),
  };
  return { bus, calls };
}

/** An endpoint that keeps what it is given as text; `refuse` makes it turn messages away. */
function endpoint(refuse = false): PresenceEndpoint & { got: string[]; replacedCount: number } {
  const e = {
    got: [] as string[],
    replacedCount: 0,
    deliver(data: Uint8Array | string): boolean {
      if (refuse) return false;
      e.got.push(typeof data === 'string' ? data : new TextDecoder().decode(data));
      return true;
    },
    replaced: () => void e.replacedCount++,
    kicked: () => undefined,
  };
  return e;
}

const alice = asUserId('alice');
const bob = asUserId('bob.smith'); // a dot: one subject token all the same

describe('Presence', () => {
  it('hands a message to a user connected here without touching the bus, in order', () => {
    const { bus, calls } = spyBus();
    const presence = new Presence(bus, 'test.presence', silent);
    const b = endpoint();
    presence.attach(bob, b);
    const before = { ...calls };
    const missed: UserId[] = [];
    for (let i = 0; i < 100; i++) presence.forward(bob, `m${i}`, (u) => missed.push(u));
    expect(b.got).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`)); // synchronously, in order
    expect(missed).toEqual([]);
    expect(calls).toEqual(before); // no publish, request or subscribe for the messages
    presence.close();
  });

  it('tells the sender at once when the local target refuses the message, still without the bus', () => {
    const { bus, calls } = spyBus();
    const presence = new Presence(bus, 'test.presence', silent);
    presence.attach(alice, endpoint(true));
    const before = { ...calls };
    const missed: UserId[] = [];
    presence.forward(alice, 'x', (u) => missed.push(u));
    expect(missed).toEqual([alice]);
    expect(calls).toEqual(before);
    presence.close();
  });

  it('on one node, tells the sender at once that an unknown user is offline, without the bus', () => {
    const { bus, calls } = spyBus(false);
    const presence = new Presence(bus, 'test.presence', silent);
    presence.attach(alice, endpoint());
    const before = { ...calls };
    const missed: UserId[] = [];
    presence.forward(asUserId('nobody'), 'lost', (u) => missed.push(u));
    presence.forward(alice, 'found', () => missed.push(alice));
    presence.forward(asUserId('nobody-either'), 'lost', (u) => missed.push(u));
    // Synchronously and in the order of the sends: the sender's notices keep that order.
    expect(missed).toEqual(['nobody', 'nobody-either']);
    expect(calls).toEqual(before);
    presence.close();
  });

  it('reaches a user held by another node over the bus, and reports an unknown one', async () => {
    const { bus, calls } = spyBus();
    // Two Presences on one bus: two nodes, bob connected to the second.
    const here = new Presence(bus, 'test.presence', silent);
    const there = new Presence(bus, 'test.presence', silent);
    const b = endpoint();
    there.attach(bob, b);
    const missed: UserId[] = [];
    here.forward(bob, 'over the bus', (u) => missed.push(u));
    expect(calls.request).toBe(1);
    expect(b.got).toEqual(['over the bus']);
    let told!: () => void;
    const unknownTold = new Promise<void>((resolve) => (told = resolve));
    here.forward(asUserId('nobody'), 'lost', (u) => {
      missed.push(u);
      told();
    });
    await unknownTold;
    expect(calls.request).toBe(2);
    expect(missed).toEqual(['nobody']);
    here.close();
    there.close();
  });

  it('gives a user to its newest connection: the older is told it was replaced and gets nothing more', () => {
    const { bus } = spyBus();
    const presence = new Presence(bus, 'test.presence', silent);
    const first = endpoint();
    const second = endpoint();
    presence.attach(alice, first);
    presence.attach(alice, second);
    presence.forward(alice, 'hello', () => undefined);
    expect(first.replacedCount).toBe(1);
    expect(first.got).toEqual([]);
    expect(second.got).toEqual(['hello']);
    presence.close();
  });

  describe('on a bus that reaches no other node (one node)', () => {
    it('attaches without the bus: no claim published, no subscription per connection', () => {
      const { bus, calls } = spyBus(false);
      const presence = new Presence(bus, 'test.presence', silent);
      const before = { ...calls };
      for (let i = 0; i < 50; i++) presence.attach(asUserId(`u${i}`), endpoint());
      expect(presence.size).toBe(50);
      expect(calls).toEqual(before);
      presence.close();
    });

    it('a second connection of the same user replaces the first, as on any bus', () => {
      const { bus, calls } = spyBus(false);
      const presence = new Presence(bus, 'test.presence', silent);
      const before = { ...calls };
      const first = endpoint();
      const second = endpoint();
      const firstHandle = presence.attach(bob, first);
      presence.attach(bob, second);
      // Let go at once, inside the attach, before the second answers anything.
      expect(first.replacedCount).toBe(1);
      expect(second.replacedCount).toBe(0);
      expect(presence.size).toBe(1);
      presence.forward(bob, 'hello', () => undefined);
      expect(first.got).toEqual([]);
      expect(second.got).toEqual(['hello']);
      firstHandle.detach(); // the replaced connection closing later changes nothing
      expect(presence.has(bob)).toBe(true);
      presence.forward(bob, 'again', () => undefined);
      expect(second.got).toEqual(['hello', 'again']);
      expect(calls).toEqual(before);
      presence.close();
    });

    it('answers connectedAnywhere from its own table, without asking the bus', async () => {
      const { bus, calls } = spyBus(false);
      const presence = new Presence(bus, 'test.presence', silent);
      const handle = presence.attach(alice, endpoint());
      expect(await presence.connectedAnywhere(alice)).toBe(true);
      expect(await presence.connectedAnywhere('nobody')).toBe(false);
      handle.detach();
      expect(await presence.connectedAnywhere(alice)).toBe(false);
      expect(calls.request).toBe(0);
      presence.close();
    });

    it('still tells the sender of a message to a user not connected', async () => {
      const { bus } = spyBus(false);
      const presence = new Presence(bus, 'test.presence', silent);
      const missed = await new Promise<UserId>((resolve) => presence.forward(alice, 'x', resolve));
      expect(missed).toBe(alice);
      presence.close();
    });
  });

  it('on a bus that may reach other nodes, announces each attach and subscribes for its deliveries', () => {
    for (const says of [true, undefined]) {
      const { bus, calls } = spyBus(says);
      const presence = new Presence(bus, 'test.presence', silent);
      const before = { ...calls };
      presence.attach(alice, endpoint());
      presence.attach(bob, endpoint());
      expect(calls.publish - before.publish).toBe(2); // one claim each
      expect(calls.subscribe - before.subscribe).toBe(2); // one `deliver` subscription each
      presence.close();
    }
  });
});
