import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocketServer } from 'ws';
import type { IdentityRegistry } from '../../src/core/identity-registry.js';
import { Presence } from '../../src/core/presence.js';
import { UpgradeShortcuts } from '../../src/server/upgrade-shortcuts.js';
import { RawWebSocket } from '../fixtures/raw-websocket.js';
import { signalCookie } from '../fixtures/signal-user.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

const register = (t: TestServer, name: string): Promise<string> => signalCookie(t.url, name);

const port = (t: TestServer): number => Number(new URL(t.url).port);

describe('UpgradeShortcuts: which upgrades skip the full path', () => {
  let server: Server;
  const seen: string[] = [];
  let accepting = true;
  const wss = new WebSocketServer({ noServer: true });
  /** Answers an upgrade with 101 and says who took it in the first message. */
  const answer = (who: string) => (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push(`${who} ${request.method} ${request.url}`);
    wss.handleUpgrade(request, socket, head, (ws) => ws.send(who));
  };

  beforeAll(async () => {
    server = createServer();
    // The full path: what @fastify/websocket listens with, registered before the shortcuts.
    server.on('upgrade', answer('full'));
    const shortcuts = new UpgradeShortcuts(server, () => accepting);
    shortcuts.add('/fast', answer('fast'));
    shortcuts.add('/back', (_request, _socket, _head, fullPath) => fullPath());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(() => {
    seen.length = 0;
    accepting = true;
  });

  const firstMessage = async (path: string): Promise<string> => {
    const s = await TestSocket.open(`ws://127.0.0.1:${(server.address() as AddressInfo).port}${path}`);
    const text = await s.next();
    s.ws.terminate();
    return text;
  };

  it('takes GET on the exact path (any query) and leaves every other upgrade to the full path', async () => {
    expect(await firstMessage('/fast')).toBe('fast');
    expect(await firstMessage('/fast?x=1&y=2')).toBe('fast');
    expect(await firstMessage('/fast/')).toBe('full');
    expect(await firstMessage('/other')).toBe('full');
    expect(await firstMessage('/back')).toBe('full');
    // Each upgrade reached exactly one taker.
    expect(seen).toEqual([
      'fast GET /fast',
      'fast GET /fast?x=1&y=2',
      'full GET /fast/',
      'full GET /other',
      'full GET /back',
    ]);
  });

  it('leaves everything to the full path while the server is not accepting (draining)', async () => {
    accepting = false;
    expect(await firstMessage('/fast')).toBe('full');
    expect(seen).toEqual(['full GET /fast']);
  });
});

describe('Signal /v1/connect taken before Fastify (#17.1): same answers, nothing left behind', () => {
  let t: TestServer;
  let identities: IdentityRegistry;
  const realGet = (): IdentityRegistry['get'] =>
    Object.getPrototypeOf(identities).get as IdentityRegistry['get'];
  /** URLs Fastify's router was handed for an upgrade (the full path). */
  const routed: string[] = [];

  beforeAll(async () => {
    t = await startTestServer({ signal: { maxFrameBytes: 1024 } });
    identities = t.server.engine.identities('signal');
    const app = t.server.app as unknown as { routing: (req: IncomingMessage, res: unknown) => void };
    const routing = app.routing.bind(app);
    app.routing = (req, res) => {
      if (req.headers.upgrade) routed.push(req.url ?? '');
      routing(req, res);
    };
  });
  afterAll(async () => {
    await t.close();
  });
  afterEach(() => {
    // Back to the registry's own method.
    delete (identities as Partial<IdentityRegistry>).get;
    routed.length = 0;
  });

  it('connects without Fastify routing the upgrade, under every prefix and with a query', async () => {
    const alice = await register(t, 'sc-alice');
    const bob = await register(t, 'sc-bob');
    const a = await TestSocket.open(`${t.wsUrl}/v1/connect?v=1`, { cookie: alice });
    const b = await TestSocket.open(`${t.wsUrl}/api/v1/connect`, { cookie: bob });
    a.send({ target: 'sc-bob', type: 'offer', payload: { sdp: 'x' } });
    expect(JSON.parse(await b.next())).toEqual({
      originator: 'sc-alice',
      target: 'sc-bob',
      type: 'offer',
      payload: { sdp: 'x' },
    });
    expect(routed).toEqual([]);
    a.close();
    b.close();
  });

  it('closes 4000 without a valid session, and 1009 past the message limit, as before', async () => {
    const none = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie: 'chorus_session=ghost.c2ln' });
    expect(await none.closed).toEqual({ code: 4000, reason: 'UNAUTHENTICATED' });
    const cookie = await register(t, 'sc-big');
    const s = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
    s.send({ target: 'sc-big', type: 'x', payload: 'y'.repeat(2000) });
    expect((await s.closed).code).toBe(1009);
    expect(routed).toEqual([]);
  });

  it('answers a bad handshake with 400 (ws) and a store failure with the surface 500, through the full path', async () => {
    const cookie = await register(t, 'sc-store');
    const bad = await RawWebSocket.open(port(t), '/v1/connect', { cookie, 'Sec-WebSocket-Version': '7' });
    expect(bad.status).toBe(400);
    bad.destroy();

    let failures = 0;
    identities.get = () => {
      failures++;
      return Promise.reject(new Error('store down (test)'));
    };
    const refused = await TestSocket.refusal(`${t.wsUrl}/v1/connect`, { cookie });
    expect(refused.status).toBe(500);
    expect(JSON.parse(refused.body)).toEqual({ status: 'INVALID', message: 'internal error' });
    // Asked by the shortcut, then again by the full path that answered.
    expect(failures).toBe(2);
    expect(routed).toEqual(['/v1/connect']);

    delete (identities as Partial<IdentityRegistry>).get;
    const s = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
    s.send({ target: 'sc-store', type: 'self', payload: 1 });
    expect(JSON.parse(await s.next()).type).toBe('self');
    s.close();
  });

  it('answers each of many upgrades arriving at once on its own: opened, refused 4000, or the store failure 500', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `sc-many-${i}`);
    const cookies = await Promise.all(names.map((n) => register(t, n)));
    const failing = await register(t, 'sc-many-down');
    identities.get = function (this: IdentityRegistry, user) {
      return user === 'sc-many-down'
        ? Promise.reject(new Error('store down for one name (test)'))
        : realGet().call(this, user);
    };
    const [opened, ghosts, refused] = await Promise.all([
      Promise.all(cookies.map((cookie) => TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie }))),
      Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie: `chorus_session=ghost-${i}.c2ln` }),
        ),
      ),
      TestSocket.refusal(`${t.wsUrl}/v1/connect`, { cookie: failing }),
    ]);
    expect(refused.status).toBe(500);
    for (const g of ghosts) expect(await g.closed).toEqual({ code: 4000, reason: 'UNAUTHENTICATED' });
    // Each opened socket is its own user's.
    opened.forEach((s, i) => s.send({ target: names[i], type: 'self', payload: i }));
    for (const [i, s] of opened.entries())
      expect(JSON.parse(await s.next())).toMatchObject({ originator: names[i], payload: i });
    for (const s of opened) s.close();
  });

  it('ends the socket of a connection that could not be made (a throw while it is set up), and goes on serving', async () => {
    const cookie = await register(t, 'sc-throws');
    await eventually(() => t.server.tracker.size === 0, 30_000, 'the earlier sockets to close');
    const attach = vi.spyOn(Presence.prototype, 'attach').mockImplementationOnce(() => {
      throw new Error('attach failed (test)');
    });
    try {
      const s = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
      // Without a connection behind it the socket would stay open, answering nothing.
      expect((await s.closed).code).toBe(1006);
      expect(attach).toHaveBeenCalledTimes(1);
    } finally {
      attach.mockRestore();
    }
    await eventually(() => t.server.tracker.size === 0, 30_000, 'no socket left open');
    const again = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
    again.send({ target: 'sc-throws', type: 'back', payload: null });
    expect(JSON.parse(await again.next()).type).toBe('back');
    again.close();
  });

  it('lets go of a client that leaves while its session is checked, or right after the 101', async () => {
    const cookie = await register(t, 'sc-gone');
    // The earlier tests' sockets close on their own time: start from none.
    await eventually(() => t.server.tracker.size === 0, 30_000, 'the earlier sockets to close');
    // The store answers only once the client has gone.
    let release: () => void = () => undefined;
    let asked = false;
    identities.get = function (this: IdentityRegistry, user) {
      asked = true;
      return new Promise<void>((resolve) => (release = resolve)).then(() => realGet().call(this, user));
    };
    const leaving = await openUnanswered(port(t), cookie);
    await eventually(() => asked, 30_000, 'the session check to start');
    leaving.destroy();
    await eventually(() => leaving.destroyed, 30_000, 'the client socket to close');
    release();
    delete (identities as Partial<IdentityRegistry>).get;

    // Upgraded, then gone at once.
    const abrupt = await RawWebSocket.open(port(t), '/v1/connect', { cookie });
    expect(abrupt.status).toBe(101);
    abrupt.destroy();

    await eventually(() => t.server.tracker.size === 0, 30_000, 'no socket left open');
    // The name still connects and works.
    const s = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
    s.send({ target: 'sc-gone', type: 'back', payload: null });
    expect(JSON.parse(await s.next()).type).toBe('back');
    expect(t.server.tracker.size).toBe(1);
    s.close();
  });
});

/** Sends an upgrade request and reads nothing back: a client that may leave at any moment. */
async function openUnanswered(port: number, cookie: string): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    [
      'GET /v1/connect HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      `Cookie: ${cookie}`,
      '',
      '',
    ].join('\r\n'),
  );
  return socket;
}
