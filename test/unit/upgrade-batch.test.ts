// UpgradeBatch (#17.1): the upgrades added during one pass of the event loop are taken
// together, in order, in its check phase (after that pass's ticks, promise reactions and
// other I/O callbacks); one whose take throws is logged and failed, the others are taken.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { logRecorder as recorder } from '../fixtures/log-recorder.js';
import { UpgradeBatch } from '../../src/api/signal/upgrade-batch.js';

describe('UpgradeBatch', () => {
  it('takes what one pass added after its ticks and reactions, in order; a later pass starts empty', async () => {
    const { log } = recorder();
    const order: string[] = [];
    const batch = new UpgradeBatch<string>(
      (u) => order.push(u),
      () => order.push('failed'),
      log,
    );
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        batch.add('a');
        batch.add('b');
        process.nextTick(() => order.push('tick'));
        void Promise.resolve().then(() => {
          order.push('reaction');
          batch.add('c');
        });
        expect(order).toEqual([]);
        resolve();
      }, 0),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['tick', 'reaction', 'a', 'b', 'c']);
    batch.add('d');
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['tick', 'reaction', 'a', 'b', 'c', 'd']);
  });

  it('gathers the sockets read in one poll phase into one batch', async () => {
    const { log } = recorder();
    /** Each upgrade taken, with how many had been added by then. */
    const taken: [number, number][] = [];
    let added = 0;
    const batch = new UpgradeBatch<number>(
      (n) => taken.push([n, added]),
      () => undefined,
      log,
    );
    let accepted = 0;
    const server = createServer((s) => {
      accepted++;
      s.on('data', (d) => {
        added++;
        batch.add(d[0]!);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const clients: Socket[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const c = connect(port, '127.0.0.1');
        await new Promise<void>((resolve) => c.once('connect', () => resolve()));
        clients.push(c);
      }
      await expect.poll(() => accepted, { timeout: 10_000 }).toBe(5);
      // Five writes in one callback: on loopback each is in the server's receive queue when
      // write returns, so its next poll finds all five readable.
      setImmediate(() => clients.forEach((c, i) => c.write(Buffer.from([i]))));
      await expect.poll(() => taken.length, { timeout: 10_000 }).toBe(5);
      // None was taken before all five were read.
      expect(taken).toEqual([0, 1, 2, 3, 4].map((n) => [n, 5]));
    } finally {
      for (const c of clients) c.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('logs and fails an upgrade whose take throws, and takes the others', async () => {
    const { log, lines } = recorder();
    const taken: string[] = [];
    const failed: string[] = [];
    const batch = new UpgradeBatch<string>(
      (u) => {
        if (u === 'bad') throw new Error('cannot parse');
        taken.push(u);
      },
      (u) => failed.push(u),
      log,
    );
    batch.add('a');
    batch.add('bad');
    batch.add('c');
    await new Promise((resolve) => setImmediate(resolve));
    expect(taken).toEqual(['a', 'c']);
    expect(failed).toEqual(['bad']);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([
      'signal: an upgrade could not be taken',
    ]);
  });
});
