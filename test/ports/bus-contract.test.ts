import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BusTimeoutError,
  NoRespondersError,
  subjectToken,
  type Bus,
  type BusMessage,
} from '../../src/ports/bus/bus.js';
import { LocalBus } from '../../src/ports/bus/local-bus.js';
import { NatsBus } from '../../src/ports/bus/nats-bus.js';
import { NatsLink } from '../../src/ports/nats/nats-link.js';
import { PortUnavailableError } from '../../src/ports/port-errors.js';
import { NatsServerProcess } from '../fixtures/nats-server.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually, within } from '../fixtures/ws-client.js';

const log = pino({ level: 'silent' });
const text = (d: Uint8Array): string => new TextDecoder().decode(d);

/**
 * Two ends of one bus: `a` and `b` are two nodes (two NATS connections) or, locally, the
 * same process bus. `settle` makes sure subscriptions made so far are in effect everywhere.
 */
interface BusPair {
  a: Bus;
  b: Bus;
  settle: () => Promise<void>;
}

let seq = 0;
/** A subject prefix of its own per test: tests share one server. */
const fresh = (): string => `t${++seq}x${Date.now().toString(36)}`;

function busContract(name: string, pair: () => BusPair): void {
  describe(`Bus contract: ${name}`, () => {
    it('delivers publishes to exact, `*` and `>` subscribers in order, across the two ends', async () => {
      const { a, b, settle } = pair();
      const p = fresh();
      const got: string[] = [];
      b.subscribe(`${p}.x.c`, (m) => got.push(`exact:${text(m.data)}`));
      b.subscribe(`${p}.*.c`, (m) => got.push(`star:${text(m.data)}`));
      b.subscribe(`${p}.>`, (m) => got.push(`tail:${m.subject}:${text(m.data)}`));
      b.subscribe(`${p}.none.>`, () => got.push('never'));
      await settle();
      for (let i = 0; i < 5; i++) a.publish(`${p}.x.c`, String(i));
      a.publish(`${p}.q`, 'q');
      await eventually(() => got.length >= 16, 5000, 'sixteen deliveries');
      const by = (prefix: string): string[] => got.filter((g) => g.startsWith(prefix));
      expect(by('exact:')).toEqual(['exact:0', 'exact:1', 'exact:2', 'exact:3', 'exact:4']);
      expect(by('star:')).toEqual(['star:0', 'star:1', 'star:2', 'star:3', 'star:4']);
      expect(by('tail:')).toEqual([0, 1, 2, 3, 4].map((i) => `tail:${p}.x.c:${i}`).concat(`tail:${p}.q:q`));
      expect(got).not.toContain('never');
    });

    it('says it reaches other nodes exactly when its two ends are two nodes (Presence relies on it)', () => {
      const { a, b } = pair();
      expect(a.reachesOtherNodes).toBe(a !== b);
      expect(b.reachesOtherNodes).toBe(a !== b);
    });

    it('keeps a dotted id one token with subjectToken, and delivers bytes as sent', async () => {
      const { a, b, settle } = pair();
      const p = fresh();
      const got: BusMessage[] = [];
      b.subscribe(`${p}.user.*`, (m) => got.push(m));
      await settle();
      a.publish(`${p}.user.${subjectToken('alice.smith')}`, new Uint8Array([0, 255, 1]));
      await eventually(() => got.length === 1, 5000, 'the delivery');
      expect(got[0]!.subject).toBe(`${p}.user.alice%2esmith`);
      expect([...got[0]!.data]).toEqual([0, 255, 1]);
      expect('respond' in got[0]! && got[0].respond !== undefined).toBe(false); // a publish has no reply
    });

    it('stops delivering after unsubscribe', async () => {
      const { a, b, settle } = pair();
      const p = fresh();
      const got: string[] = [];
      const sub = b.subscribe(`${p}.s`, (m) => got.push(text(m.data)));
      const marks: string[] = [];
      b.subscribe(`${p}.mark`, (m) => marks.push(text(m.data)));
      await settle();
      a.publish(`${p}.s`, 'one');
      await eventually(() => got.length === 1, 5000, 'the first delivery');
      sub.unsubscribe();
      sub.unsubscribe(); // twice is harmless
      await settle();
      a.publish(`${p}.s`, 'two');
      a.publish(`${p}.mark`, 'after');
      await eventually(() => marks.length === 1, 5000, 'the marker');
      expect(got).toEqual(['one']);
    });

    it('answers a request; the first answer wins', async () => {
      const { a, b, settle } = pair();
      const p = fresh();
      b.subscribe(`${p}.echo`, (m) => {
        if (!('respond' in m)) return; // a request always carries one: the test then times out
        m.respond?.(`echo:${text(m.data)}`);
        m.respond?.('second answer, ignored');
      });
      await settle();
      const answer = await a.request(`${p}.echo`, 'hi', { timeoutMs: 3000 });
      expect(text(answer)).toBe('echo:hi');
    });

    it('rejects with NoRespondersError when nobody listens', async () => {
      const { a } = pair();
      await expect(a.request(`${fresh()}.nobody`, 'x', { timeoutMs: 3000 })).rejects.toBeInstanceOf(
        NoRespondersError,
      );
    });

    it('rejects with BusTimeoutError when a listener does not answer in time', async () => {
      const { a, b, settle } = pair();
      const p = fresh();
      let seen = 0;
      b.subscribe(`${p}.silent`, () => seen++);
      await settle();
      await expect(a.request(`${p}.silent`, 'x', { timeoutMs: 300 })).rejects.toBeInstanceOf(BusTimeoutError);
      expect(seen).toBe(1);
    });

    it('isolates a throwing handler: the others still get the message, later ones too', async () => {
      const { a, b, settle } = pair();
      const p = fresh();
      const got: string[] = [];
      b.subscribe(`${p}.t`, () => {
        throw new Error('handler bug');
      });
      b.subscribe(`${p}.t`, (m) => got.push(text(m.data)));
      await settle();
      a.publish(`${p}.t`, '1');
      a.publish(`${p}.t`, '2');
      await eventually(() => got.length === 2, 5000, 'both deliveries');
      expect(got).toEqual(['1', '2']);
    });
  });
}

busContract('LocalBus', () => {
  const bus = new LocalBus(log);
  return { a: bus, b: bus, settle: () => Promise.resolve() };
});

describe.runIf(hasTool('nats-server', 'nats-server'))('NatsBus', () => {
  const nats = new NatsServerProcess({ jetstream: true });
  const links: NatsLink[] = [];
  let a: NatsBus;
  let b: NatsBus;

  beforeAll(async () => {
    await nats.start();
    for (const nodeId of ['bus-a', 'bus-b']) {
      links.push(await NatsLink.open({ servers: [nats.url], nodeId, connectTimeoutMs: 10_000, log }));
    }
    a = new NatsBus(links[0]!, log);
    b = new NatsBus(links[1]!, log);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const l of links) await l.close();
    await nats.dispose();
  });

  busContract('NatsBus (two connections)', () => ({
    a,
    b,
    // A round trip on each connection: its subscriptions have reached the server.
    settle: async () => {
      for (const l of links) await l.nc.flush();
    },
  }));

  describe('while NATS is down', () => {
    it('refuses requests at once, drops publishes without throwing, and works again after a restart', async () => {
      const p = fresh();
      const got: string[] = [];
      b.subscribe(`${p}.back`, (m) => {
        got.push(text(m.data));
        m.respond?.('ok');
      });
      await links[1]!.nc.flush();
      await nats.stop();
      await eventually(
        () => !links[0]!.connected && !links[1]!.connected,
        10_000,
        'both links to see the loss',
      );
      const refused = await within(
        a.request(`${p}.back`, 'x', { timeoutMs: 20_000 }).then(
          () => undefined,
          (err: unknown) => err,
        ),
        1000,
        'a prompt refusal',
      );
      expect(refused).toBeInstanceOf(PortUnavailableError);
      expect(() => a.publish(`${p}.back`, 'lost')).not.toThrow();
      expect(a.dropped).toBeGreaterThan(0);

      await nats.start();
      await eventually(() => links[0]!.connected && links[1]!.connected, 20_000, 'both links to reconnect');
      // The subscription made before the outage is renewed by the client.
      await eventually(
        async () => {
          try {
            return text(await a.request(`${p}.back`, 'again', { timeoutMs: 1000 })) === 'ok';
          } catch {
            return false;
          }
        },
        20_000,
        'a request answered after the restart',
      );
      expect(got).not.toContain('lost');
    });
  });
});
