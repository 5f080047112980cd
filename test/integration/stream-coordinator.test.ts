import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorClient } from '../../src/api/stream/coordinator-client.js';
import { FakeCoordinator } from '../fixtures/fake-coordinator.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

const SECRET = 'coordinator-shared-secret';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(stream: Record<string, unknown> = {}, network: Record<string, unknown> = {}) {
  const coord = new FakeCoordinator(SECRET);
  await coord.start();
  cleanups.push(() => coord.stop());
  const t: TestServer = await startTestServer({
    stream: {
      controlBaseUrl: coord.url,
      controlSecret: SECRET,
      controlPublishTimeoutSeconds: 1,
      controlReconnectMaxSeconds: 1,
      maxIpConcurrentConnections: 100,
      ...stream,
    },
    network,
  });
  cleanups.push(() => t.close());
  await eventually(() => coord.connected, 5000, 'the server to reach the coordinator');
  return { coord, t };
}

describe('stream coordinator', () => {
  it('connects with the HS256 token and the external address headers', async () => {
    const { coord } = await setup({}, { externalIp: '203.0.113.5', externalPort: 8443, externalSsl: true });
    const h = coord.connections[0]!.headers;
    expect(h['x-external-ip']).toBe('203.0.113.5');
    expect(h['x-custom-port']).toBe('8443');
    expect(h['x-ssl-use']).toBe('true');
    const [header, payload] = String(h['x-control-auth-token']).split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(JSON.parse(Buffer.from(payload!, 'base64url').toString())).toEqual({ sub: 'wss-control' });
  });

  it('asks it to authorize a publish, and reports the end with the stream id', async () => {
    const { coord, t } = await setup();
    const pub = await TestSocket.open(`${t.wsUrl}/live/key9/publish`);
    const req = coord.messages('PUBLISH-REQUEST')[0]!;
    expect(Object.fromEntries(req.params)).toEqual({
      'request-id': '0',
      'stream-channel': 'live',
      'stream-key': 'key9',
      'user-ip': '127.0.0.1',
    });
    const r = await TestSocket.open(`${t.wsUrl}/live/key9/receive`);
    pub.ws.send(Buffer.from('x'));
    await r.binaryCount(1);
    pub.close();
    await eventually(() => coord.messages('PUBLISH-END').length === 1);
    expect(Object.fromEntries(coord.messages('PUBLISH-END')[0]!.params)).toEqual({
      'stream-channel': 'live',
      'stream-id': 'sid-0',
    });
    // Request ids count up.
    (await TestSocket.open(`${t.wsUrl}/live2/k/publish`)).close();
    expect(coord.messages('PUBLISH-REQUEST')[1]!.params.get('request-id')).toBe('1');
  });

  it('a denial or no answer in time refuses the publish with 403 Invalid Key.; a late accept is ended', async () => {
    const { coord, t } = await setup();
    coord.mode = 'deny';
    expect(await TestSocket.refusal(`${t.wsUrl}/nope/k/publish`)).toEqual({
      status: 403,
      body: 'Invalid Key.',
    });
    coord.mode = 'silent';
    expect(await TestSocket.refusal(`${t.wsUrl}/slow/k/publish`)).toEqual({
      status: 403,
      body: 'Invalid Key.',
    });
    const late = coord.messages('PUBLISH-REQUEST').at(-1)!.params.get('request-id')!;
    coord.send('PUBLISH-ACCEPT', { 'Request-ID': late, 'Stream-Channel': 'slow', 'Stream-ID': 'late-sid' });
    await eventually(() =>
      coord.messages('PUBLISH-END').some((m) => m.params.get('stream-id') === 'late-sid'),
    );
    // The channel is not left reserved.
    coord.mode = 'accept';
    (await TestSocket.open(`${t.wsUrl}/slow/k/publish`)).close();
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/chorus_stream_refusals_total\{reason="publish_denied"\} 2/);
  });

  it('obeys STREAM-KILL by stream id and by *', async () => {
    const { coord, t } = await setup();
    const a = await TestSocket.open(`${t.wsUrl}/ka/k/publish`);
    const b = await TestSocket.open(`${t.wsUrl}/kb/k/publish`);
    coord.send('STREAM-KILL', { 'Stream-Channel': 'ka', 'Stream-ID': 'other-id' });
    coord.send('STREAM-KILL', { 'Stream-Channel': 'ka', 'Stream-ID': 'sid-0' });
    expect(await a.closed).toEqual({ code: 1000, reason: 'stream killed' });
    coord.send('STREAM-KILL', { 'Stream-Channel': 'kb', 'Stream-ID': '*' });
    expect(await b.closed).toEqual({ code: 1000, reason: 'stream killed' });
  });

  it('refuses publishing while it cannot reach the coordinator, reconnects, and then kills old publishers', async () => {
    const { coord, t } = await setup();
    const live = await TestSocket.open(`${t.wsUrl}/keep/k/publish`);
    // The link drops: the server reconnects at once, and closes publishers the coordinator
    // now believes dead.
    coord.dropLink();
    expect(await live.closed).toEqual({ code: 1000, reason: 'stream killed' });
    await eventually(() => coord.connections.length === 2);

    // The coordinator goes away entirely: publishing is refused, receivers are unaffected.
    const port = coord.port;
    await coord.stop();
    await eventually(async () =>
      (await fetch(`${t.url}/metrics`).then((r) => r.text())).includes(
        'chorus_stream_coordinator_connected 0',
      ),
    );
    expect(await TestSocket.refusal(`${t.wsUrl}/down/k/publish`)).toEqual({
      status: 403,
      body: 'Invalid Key.',
    });
    (await TestSocket.open(`${t.wsUrl}/down/k/receive`)).close();

    // It comes back on the same address: the server finds it again (backoff capped at 1 s).
    await coord.start(port);
    await eventually(() => coord.connected, 8000, 'the reconnect');
    const again = await TestSocket.open(`${t.wsUrl}/down/k/publish`);
    again.close();
  }, 20_000);

  it('is refused by a coordinator that does not accept its secret', async () => {
    const coord = new FakeCoordinator('a-different-secret');
    await coord.start();
    cleanups.push(() => coord.stop());
    const t = await startTestServer({
      stream: { controlBaseUrl: coord.url, controlSecret: SECRET, controlReconnectMaxSeconds: 1 },
    });
    cleanups.push(() => t.close());
    await eventually(() => coord.rejected.length > 0);
    expect(coord.connected).toBe(false);
    expect((await TestSocket.refusal(`${t.wsUrl}/x/k/publish`)).body).toBe('Invalid Key.');
  });
});

describe('CoordinatorClient link upkeep', () => {
  it('heartbeats, and reconnects when the coordinator goes silent past the read timeout', async () => {
    const coord = new FakeCoordinator(SECRET);
    await coord.start();
    cleanups.push(() => coord.stop());
    let connects = 0;
    const client = new CoordinatorClient(
      {
        baseUrl: coord.url,
        secret: SECRET,
        externalIp: undefined,
        externalPort: undefined,
        externalSsl: false,
        publishTimeoutMs: 1000,
        reconnectMaxMs: 500,
        heartbeatMs: 100,
        readTimeoutMs: 600,
      },
      { kill: () => undefined, connected: () => connects++ },
      pino({ level: 'silent' }),
    );
    client.start();
    cleanups.push(() => client.close());
    await eventually(() => coord.messages('HEARTBEAT').length >= 2, 10_000, 'heartbeats');
    // The fake never sends anything back, so the client gives up on the link and dials again.
    await eventually(() => connects >= 2, 5000, 'a reconnect after the read timeout');
  });
});
