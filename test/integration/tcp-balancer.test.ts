import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBalancer, type Balancer } from '../fixtures/tcp-balancer.js';

// The balancer is a test fixture for "reconnect through any node"; these checks keep it
// honest: it spreads new connections, skips a backend that refuses, and cuts a
// connection whose backend goes away.
describe('TCP balancer fixture', () => {
  const servers: Server[] = [];
  const addresses: string[] = [];
  let balancer: Balancer;

  beforeAll(async () => {
    for (const name of ['a', 'b']) {
      const server = createServer((_req, res) => {
        res.setHeader('connection', 'close');
        res.end(name);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no address');
      servers.push(server);
      addresses.push(`127.0.0.1:${address.port}`);
    }
    balancer = await startBalancer(() => addresses);
  });

  afterAll(async () => {
    await balancer.close();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('spreads new connections over the backends', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await (await fetch(balancer.url)).text());
    expect([...seen].sort()).toEqual(['a', 'b']);
  });

  it('skips a backend that refuses and keeps answering', async () => {
    servers[0]!.closeAllConnections();
    await new Promise((resolve) => servers[0]!.close(resolve));
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push(await (await fetch(balancer.url)).text());
    expect(answers).toEqual(['b', 'b', 'b', 'b']);
  });

  it('cuts the client connection when its backend connection dies', async () => {
    const held: Socket[] = [];
    const tcp = createTcpServer((s) => held.push(s));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const address = tcp.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    const lb = await startBalancer(() => [`127.0.0.1:${address.port}`]);
    try {
      const client = connect(lb.port, '127.0.0.1');
      const closed = new Promise((resolve) => client.on('close', resolve));
      client.on('error', () => undefined);
      await expect.poll(() => held.length, { timeout: 10_000 }).toBe(1);
      held[0]!.destroy();
      await closed;
      expect(client.destroyed).toBe(true);
    } finally {
      await lb.close();
      await new Promise((resolve) => tcp.close(resolve));
    }
  });
});
