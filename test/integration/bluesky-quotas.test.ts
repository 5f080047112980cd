import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { eventually } from '../fixtures/ws-client.js';

/** Servers trust X-Forwarded-For from loopback, so each test can speak from several IPs. */
const started: TestServer[] = [];
async function server(bluesky: Record<string, unknown>): Promise<TestServer> {
  const t = await startTestServer({
    http: { trustProxy: ['127.0.0.1'] },
    webrtc: { bindAddress: '127.0.0.1' },
    bluesky,
  });
  started.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => t.close()));
});

async function create(t: TestServer, ip: string, user = 'someone') {
  const res = await fetch(`${t.url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ user_id: user }),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as { id?: string; error?: string; admin_key?: string },
  };
}

const listed = async (t: TestServer) => (await (await fetch(`${t.url}/webrtc/room`)).json()) as string[];

describe('Blue Sky: per-IP limits on room creation', () => {
  it('answers 429 with Retry-After past the burst, while another IP still creates rooms', async () => {
    const t = await server({ roomCreateRatePerMinute: 1, roomCreateBurst: 3 });
    for (let i = 0; i < 3; i++) expect((await create(t, '203.0.113.10')).status).toBe(201);
    const refused = await create(t, '203.0.113.10');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatch(/too many rooms created from your address/);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await create(t, '203.0.113.11')).status).toBe(201);
    expect(await listed(t)).toHaveLength(4);
  });

  it('caps the open rooms one IP created; closing one makes room for another', async () => {
    const t = await server({ roomCreateRatePerMinute: 0, maxOpenRoomsPerIp: 2 });
    const a = await create(t, '198.51.100.20', 'owner');
    expect(a.status).toBe(201);
    expect((await create(t, '198.51.100.20', 'owner')).status).toBe(201);
    const third = await create(t, '198.51.100.20', 'owner');
    expect(third.status).toBe(429);
    expect(third.body.error).toBe(
      'at most 2 open rooms per address; close one (DELETE /webrtc/room/:id) first',
    );
    expect(third.retryAfter).toBeNull();
    expect((await create(t, '198.51.100.21')).status).toBe(201);
    const closed = await fetch(`${t.url}/webrtc/room/${a.body.id}`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'owner' }),
    });
    expect(closed.status).toBe(204);
    expect((await create(t, '198.51.100.20', 'owner')).status).toBe(201);
  });
});

describe('Blue Sky: rooms unused for BLUESKY_ROOM_TTL_HOURS expire', () => {
  it('deletes an empty unused room, keeps one with a publisher in it, and frees the creator cap', async () => {
    const t = await server({ roomCreateRatePerMinute: 0, maxOpenRoomsPerIp: 2, roomTtlHours: 2.5 / 3600 });
    const idle = (await create(t, '192.0.2.30')).body.id!;
    const live = (await create(t, '192.0.2.30')).body.id!;
    const pub = new NdcPublisher();
    try {
      expect((await pub.publish(t.url, live, 'speaker')).status).toBe(200);
      pub.start();
      await eventually(async () => !(await listed(t)).includes(idle), 20_000, 'the idle room to expire');
      expect((await fetch(`${t.url}/webrtc/room/${idle}`)).status).toBe(404);
      // The room in use outlived its TTL; its publisher is still there.
      expect(await listed(t)).toContain(live);
      const info = (await (await fetch(`${t.url}/webrtc/room/${live}`)).json()) as { publishers: string[] };
      expect(info.publishers).toEqual(['speaker']);
      // The expired room no longer counts against its creator's cap.
      expect((await create(t, '192.0.2.30')).status).toBe(201);
    } finally {
      pub.close();
    }
  });
});

describe('Blue Sky secured mode: join claims store keys, so they are limited too', () => {
  const join = (t: TestServer, room: string, user: string, ip: string) =>
    fetch(`${t.url}/webrtc/room/${room}/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
      body: JSON.stringify({ user_id: user }),
    });

  it('answers 429 with Retry-After past the join burst, while another IP still joins', async () => {
    const t = await server({ secureRooms: true, joinRatePerMinute: 1, joinBurst: 2 });
    const room = (await create(t, '203.0.113.40', 'host')).body.id!;
    expect((await join(t, room, 'p1', '203.0.113.41')).status).toBe(201);
    expect((await join(t, room, 'p2', '203.0.113.41')).status).toBe(201);
    const refused = await join(t, room, 'p3', '203.0.113.41');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as { error: string }).error).toMatch(/too many joins from your address/);
    expect((await join(t, room, 'p3', '203.0.113.42')).status).toBe(201);
  });

  it("forgets an expired room's keys with it", async () => {
    const t = await server({ secureRooms: true, roomTtlHours: 1.5 / 3600 });
    const created = await create(t, '203.0.113.50', 'host');
    const room = created.body.id!;
    const secrets = t.server.engine.roomSecrets('bluesky');
    expect(await secrets.checkAdminKey(room, created.body.admin_key)).toBe(true);
    await eventually(async () => !(await listed(t)).includes(room), 20_000, 'the room to expire');
    await eventually(
      async () => !(await secrets.checkAdminKey(room, created.body.admin_key)),
      5000,
      "the room's keys to be forgotten",
    );
  });
});
