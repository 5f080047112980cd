import { describe, expect, it } from 'vitest';
import { TypedEmitter } from '../../sdk/src/typed-emitter.js';

type Events = {
  joined: (identity: string, at: number) => void;
  left: (identity: string) => void;
};

describe('SDK TypedEmitter', () => {
  it('calls listeners in the order they were added, with the arguments emitted', () => {
    const e = new TypedEmitter<Events>();
    const seen: string[] = [];
    e.on('joined', (id, at) => seen.push(`a:${id}@${at}`));
    e.on('joined', (id) => seen.push(`b:${id}`));
    e.on('left', (id) => seen.push(`left:${id}`));
    expect(e.emit('joined', 'ada', 7)).toBe(true);
    expect(e.emit('left', 'ada')).toBe(true);
    expect(seen).toEqual(['a:ada@7', 'b:ada', 'left:ada']);
  });

  it('says when nobody listened, and off() removes exactly one listener', () => {
    const e = new TypedEmitter<Events>();
    expect(e.emit('left', 'x')).toBe(false);
    const seen: string[] = [];
    const a = (id: string): void => void seen.push(`a:${id}`);
    const b = (id: string): void => void seen.push(`b:${id}`);
    e.on('left', a).on('left', b).off('left', a);
    e.emit('left', 'x');
    expect(seen).toEqual(['b:x']);
    expect(e.listenerCount('left')).toBe(1);
    e.removeAllListeners();
    expect(e.listenerCount('left')).toBe(0);
  });

  it('once() fires for one event only, even when it emits the same event again inside', () => {
    const e = new TypedEmitter<Events>();
    const seen: string[] = [];
    e.once('left', (id) => {
      seen.push(id);
      if (id === 'first') e.emit('left', 'nested');
    });
    e.emit('left', 'first');
    e.emit('left', 'second');
    expect(seen).toEqual(['first']);
  });

  it('a throwing listener is reported and the next listeners still run', () => {
    const e = new TypedEmitter<Events>();
    const errors: Array<[string, unknown]> = [];
    e.onListenerError = (event, err) => errors.push([event, err]);
    const seen: string[] = [];
    e.on('left', () => {
      throw new Error('app bug');
    });
    e.on('left', (id) => seen.push(id));
    expect(() => e.emit('left', 'grace')).not.toThrow();
    expect(seen).toEqual(['grace']);
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toBe('left');
    expect((errors[0]![1] as Error).message).toBe('app bug');
  });

  it('an error reporter that throws too does not escape emit', () => {
    const e = new TypedEmitter<Events>();
    e.onListenerError = () => {
      throw new Error('reporter bug');
    };
    e.on('left', () => {
      throw new Error('app bug');
    });
    expect(() => e.emit('left', 'x')).not.toThrow();
  });

  it('waitFor() resolves with the next event’s arguments', async () => {
    const e = new TypedEmitter<Events>();
    const next = e.waitFor('joined');
    e.emit('joined', 'linus', 3);
    e.emit('joined', 'other', 4);
    expect(await next).toEqual(['linus', 3]);
    expect(e.listenerCount('joined')).toBe(0);
  });
});
