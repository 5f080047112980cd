import { describe, expect, it } from 'vitest';
import { FANOUT_TURN_MS, StreamChannel } from '../../src/media/stream/stream-channel.js';
import { StreamRegistry } from '../../src/media/stream/stream-registry.js';
import type { SinkEnd, StreamSink } from '../../src/media/stream/stream-sink.js';
import { eventually } from '../fixtures/ws-client.js';

class FakeSink implements StreamSink {
  readonly got: number[] = [];
  ended: SinkEnd | undefined;
  bufferedAmount = 0;
  /** `costUs`: time a send takes, as a socket write does (busy, so it holds the loop). */
  constructor(
    private readonly counter: { sends: number },
    private readonly costUs = 0,
  ) {}
  send(chunk: Buffer): void {
    if (this.costUs > 0) {
      const until = performance.now() + this.costUs / 1000;
      while (performance.now() < until);
    }
    this.counter.sends++;
    this.got.push(chunk.readUInt32BE(0));
  }
  end(reason: SinkEnd): void {
    this.ended = reason;
  }
}

function chunk(n: number, size = 64): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(n, 0);
  return b;
}

function channel(): {
  ch: StreamChannel;
  control: { paused: number; resumed: number; kill(): void; pause(): void; resume(): void };
} {
  // cache off (0 bytes): these tests count live sends only
  const ch = new StreamChannel('c', 0, { receiverQueueBytes: 1 << 30, slowReceiver: 'skip' });
  const control = {
    paused: 0,
    resumed: 0,
    kill: () => undefined,
    pause(): void {
      this.paused++;
    },
    resume(): void {
      this.resumed++;
    },
  };
  expect(ch.reserve()).toBe(true);
  ch.startPublishing('k', 's', control);
  return { ch, control };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('fan-out in slices (issue #13.6: no event-loop stall at 2,000 receivers)', () => {
  it('one socket read of many chunks to 2,000 receivers: bounded turns, timers run between, all arrive in order', async () => {
    const counter = { sends: 0 };
    const { ch } = channel();
    // 5 us a send: the whole read's fan-out is 0.5 s of work.
    const sinks = range(2000).map(() => new FakeSink(counter, 5));
    for (const s of sinks) ch.addReceiver(s, 'k', 'receive');
    // What one read of the publisher's socket can hold: 50 chunks, handed over synchronously.
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) ch.publish(chunk(i));
    const held = performance.now() - t0;
    expect(counter.sends).toBeLessThan(2000 * 50);
    // One turn and one slice at most (generous: the machine may be busy).
    expect(held).toBeLessThan(FANOUT_TURN_MS * 10);
    // A timer set now fires while the fan-out is still under way.
    const atTimer = await new Promise<number>((resolve) => setTimeout(() => resolve(counter.sends), 0));
    expect(atTimer).toBeLessThan(2000 * 50);
    await eventually(() => counter.sends === 2000 * 50, 20_000, 'every chunk to every receiver');
    for (const s of sinks) expect(s.got).toEqual(range(50));
  });

  it('a receiver joining while chunks wait gets each of them once, in order', async () => {
    const counter = { sends: 0 };
    const ch = new StreamChannel('c', 1 << 20, { receiverQueueBytes: 1 << 30, slowReceiver: 'skip' });
    ch.reserve();
    ch.startPublishing('k', 's', { kill: () => undefined });
    for (let i = 0; i < 1000; i++) ch.addReceiver(new FakeSink(counter), 'k', 'receive');
    for (let i = 0; i < 10; i++) ch.publish(chunk(i));
    const late = new FakeSink(counter);
    ch.addReceiver(late, 'k', 'receive'); // mid-way: some chunks out (and cached), others waiting
    for (let i = 10; i < 20; i++) ch.publish(chunk(i));
    await eventually(() => late.got.length >= 20 && counter.sends >= 1000 * 20, 20_000);
    expect(late.got).toEqual(range(20));
  });

  it('pauses the publisher while the backlog is over 4 MiB, resumes it once drained', async () => {
    const counter = { sends: 0 };
    const { ch, control } = channel();
    for (let i = 0; i < 600; i++) ch.addReceiver(new FakeSink(counter), 'k', 'receive');
    for (let i = 0; i < 300; i++) ch.publish(chunk(i, 16 * 1024));
    expect(control.paused).toBe(1);
    await eventually(() => control.resumed === 1, 20_000, 'the publisher to be resumed');
    await eventually(() => counter.sends === 600 * 300, 20_000);
  });

  it('the publisher leaving with chunks waiting: receivers get them all, then the end', async () => {
    const counter = { sends: 0 };
    const { ch } = channel();
    const sinks = range(1500).map(() => new FakeSink(counter));
    for (const s of sinks) ch.addReceiver(s, 'k', 'receive');
    for (let i = 0; i < 5; i++) ch.publish(chunk(i));
    ch.endPublishing();
    expect(sinks[1499]!.ended).toBeUndefined();
    await eventually(() => sinks.every((s) => s.ended === 'publisher-ended'), 20_000);
    for (const s of sinks) expect(s.got).toEqual(range(5));
    expect(ch.isPublishing).toBe(false);
  });

  it('small channels are served at once, as before', () => {
    const counter = { sends: 0 };
    const { ch } = channel();
    const sinks = range(10).map(() => new FakeSink(counter));
    for (const s of sinks) ch.addReceiver(s, 'k', 'receive');
    for (let i = 0; i < 100; i++) ch.publish(chunk(i));
    expect(counter.sends).toBe(1000);
  });

  it('a receiver that leaves mid-fan-out gets nothing more and the others are unaffected', async () => {
    const counter = { sends: 0 };
    const { ch } = channel();
    const sinks = range(1200).map(() => new FakeSink(counter));
    const receivers = sinks.map((s) => ch.addReceiver(s, 'k', 'receive'));
    for (let i = 0; i < 10; i++) ch.publish(chunk(i));
    ch.removeReceiver(receivers[1100]!);
    await eventually(() => sinks[0]!.got.length === 10 && sinks[1199]!.got.length === 10, 20_000);
    expect(sinks[1100]!.got.length).toBeLessThan(10);
    expect(ch.receiverCount).toBe(1199);
  });

  it('a channel whose publisher left with chunks waiting is forgotten once they are out, if nothing holds it', async () => {
    const counter = { sends: 0 };
    const streams = new StreamRegistry(1 << 20, { receiverQueueBytes: 1 << 30, slowReceiver: 'skip' });
    const ch = streams.channel('gone');
    ch.reserve();
    ch.startPublishing('k', 's', { kill: () => undefined });
    const receivers = range(1000).map(() => ch.addReceiver(new FakeSink(counter), 'k', 'receive'));
    for (let i = 0; i < 5; i++) ch.publish(chunk(i));
    for (const r of receivers) ch.removeReceiver(r);
    ch.endPublishing();
    streams.release(ch); // what the publisher's socket close does: too early here
    expect(streams.find('gone')).toBe(ch);
    await eventually(() => streams.find('gone') === undefined, 20_000, 'the channel to be forgotten');
    expect(streams.totals().bytesIn).toBe(5 * 64);
  });
});
