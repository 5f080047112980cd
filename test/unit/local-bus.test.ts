import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { BusTimeoutError, NoRespondersError, subjectToken } from '../../src/ports/bus/bus.js';
import { LocalBus } from '../../src/ports/bus/local-bus.js';

const text = (d: Uint8Array): string => new TextDecoder().decode(d);

describe('LocalBus', () => {
  it('delivers to exact and wildcard subscribers, in order', () => {
    const bus = new LocalBus(pino({ level: 'silent' }));
    const got: string[] = [];
    bus.subscribe('a.b.c', (m) => got.push(`exact:${text(m.data)}`));
    bus.subscribe('a.*.c', (m) => got.push(`star:${text(m.data)}`));
    bus.subscribe('a.>', (m) => got.push(`tail:${m.subject}`));
    bus.subscribe('x.>', () => got.push('never'));
    bus.publish('a.b.c', '1');
    bus.publish('a.q', '2');
    expect(got).toEqual(['exact:1', 'star:1', 'tail:a.b.c', 'tail:a.q']);
  });

  it('stops delivering after unsubscribe and keeps delivering when a handler throws', () => {
    const bus = new LocalBus(pino({ level: 'silent' }));
    const got: string[] = [];
    bus.subscribe('s', () => {
      throw new Error('boom');
    });
    const sub = bus.subscribe('s', (m) => got.push(text(m.data)));
    bus.publish('s', 'one');
    sub.unsubscribe();
    bus.publish('s', 'two');
    expect(got).toEqual(['one']);
  });

  it('answers requests, and rejects with no-responders or a timeout', async () => {
    const bus = new LocalBus(pino({ level: 'silent' }));
    bus.subscribe('echo', (m) => m.respond?.(`re:${text(m.data)}`));
    bus.subscribe('silent', () => undefined);
    expect(text(await bus.request('echo', 'hi'))).toBe('re:hi');
    await expect(bus.request('nobody', 'x')).rejects.toBeInstanceOf(NoRespondersError);
    await expect(bus.request('silent', 'x', { timeoutMs: 20 })).rejects.toBeInstanceOf(BusTimeoutError);
  });

  it('encodes subject tokens so dots in names stay one token', () => {
    expect(subjectToken('al.ice')).toBe('al%2eice');
    expect(subjectToken('a*b>c d')).toBe('a%2ab%3ec%20d');
    expect(subjectToken('plain-name_1')).toBe('plain-name_1');
  });
});
