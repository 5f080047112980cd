import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { eventually } from '../fixtures/ws-client.js';

const KEY = 'rooms-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

let ts: TestServer;
let admin: string;
const peers: NdcPublisher[] = [];
beforeAll(async () => {
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
  });
  admin = await token({ roomCreate: true, roomList: true, roomAdmin: true });
});
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});
afterAll(async () => ts.close());

function token(grants: Grants, room?: string): Promise<string> {
  return createAccessToken(KEY, SECRET, { grants, ttlSeconds: 300, ...(room ? { room } : {}) });
}

async function api(
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string; as?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const hasBody = opts.body !== undefined || opts.raw !== undefined;
  const res = await fetch(`${ts.url}/chorus/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${opts.as ?? admin}`,
      ...(hasBody ? { 'content-type': 'application/json' } : {}),
    },
    ...(hasBody ? { body: opts.raw ?? JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

const invalid = (message: RegExp) => ({
  error: { code: 'invalid_argument', message: expect.stringMatching(message) as unknown },
});

/** A Blue Sky conference (the SFU's rooms, which native rooms are) with `user` publishing in it. */
async function conferenceWith(user: string, room?: string): Promise<string> {
  let id = room;
  if (!id) {
    const res = await fetch(`${ts.url}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user }),
    });
    id = ((await res.json()) as { id: string }).id;
  }
  const pub = new NdcPublisher();
  peers.push(pub);
  expect((await pub.publish(ts.url, id, user)).status).toBe(200);
  pub.start();
  return id;
}

const participantsOf = async (room: string): Promise<{ identity: string; tracks: unknown[] }[]> =>
  (
    (await api('GET', `/rooms/${room}/participants`)).body as {
      participants: { identity: string; tracks: unknown[] }[];
    }
  ).participants;

describe('room service', () => {
  it('creates, lists, gets, updates and deletes rooms', async () => {
    const created = await api('POST', '/rooms', {
      body: { name: 'crud', metadata: '{"topic":"x"}', maxParticipants: 8 },
    });
    expect(created).toEqual({
      status: 201,
      body: {
        name: 'crud',
        metadata: '{"topic":"x"}',
        maxParticipants: 8,
        createdAt: expect.any(Number) as unknown,
      },
    });
    expect((await api('POST', '/rooms', { body: { name: 'crud' } })).status).toBe(409);
    const listed = (await api('GET', '/rooms')).body as { rooms: { name: string }[] };
    expect(listed.rooms.map((r) => r.name)).toContain('crud');
    expect(await api('GET', '/rooms/crud')).toMatchObject({
      status: 200,
      body: { name: 'crud', numParticipants: 0 },
    });

    expect(await api('PATCH', '/rooms/crud', { body: { metadata: 'new' } })).toMatchObject({
      status: 200,
      body: { name: 'crud', metadata: 'new', maxParticipants: 8 },
    });
    expect((await api('GET', '/rooms/crud')).body).toMatchObject({ metadata: 'new' });

    expect(await api('DELETE', '/rooms/crud')).toEqual({ status: 204, body: undefined });
    expect(await api('GET', '/rooms/crud')).toEqual({
      status: 404,
      body: { error: { code: 'not_found', message: 'no room crud' } },
    });
    expect((await api('DELETE', '/rooms/crud')).status).toBe(404);
    expect((await api('PATCH', '/rooms/crud', { body: { metadata: 'x' } })).status).toBe(404);
  });

  it('refuses malformed paths and bodies with 400 naming the field', async () => {
    expect(await api('POST', '/rooms', { raw: '{"name":' })).toMatchObject({ status: 400 });
    expect(await api('POST', '/rooms', { body: {} })).toEqual({
      status: 400,
      body: invalid(/^invalid body: name: /),
    });
    expect(await api('POST', '/rooms', { body: { name: 'a b' } })).toEqual({
      status: 400,
      body: invalid(/name: expected 1-128/),
    });
    expect(await api('POST', '/rooms', { body: { name: 'x'.repeat(129) } })).toEqual({
      status: 400,
      body: invalid(/name/),
    });
    expect(await api('POST', '/rooms', { body: { name: 'ok', maxParticipants: -1 } })).toEqual({
      status: 400,
      body: invalid(/maxParticipants/),
    });
    expect(await api('POST', '/rooms', { body: { name: 'ok', owner: 'me' } })).toEqual({
      status: 400,
      body: invalid(/owner|unrecognized/i),
    });
    expect(await api('POST', '/rooms', { body: ['ok'] })).toMatchObject({ status: 400 });
    expect(await api('PATCH', '/rooms/ok', { body: { metadata: 5 } })).toEqual({
      status: 400,
      body: invalid(/metadata/),
    });
    expect(await api('GET', '/rooms/bad%20name')).toEqual({
      status: 400,
      body: invalid(/^invalid path: name/),
    });
    // Nothing was created by any of them.
    expect((await api('GET', '/rooms/ok')).status).toBe(404);
  });

  it('lets roomAdmin act on its own room only', async () => {
    await api('POST', '/rooms', { body: { name: 'mine' } });
    await api('POST', '/rooms', { body: { name: 'theirs' } });
    const mine = await token({ roomAdmin: true }, 'mine');
    expect((await api('PATCH', '/rooms/mine', { body: { metadata: 'm' }, as: mine })).status).toBe(200);
    expect((await api('GET', '/rooms/mine', { as: mine })).status).toBe(200);
    expect(await api('PATCH', '/rooms/theirs', { body: { metadata: 'm' }, as: mine })).toEqual({
      status: 403,
      body: { error: { code: 'forbidden', message: 'token lacks the roomAdmin grant for room theirs' } },
    });
    expect((await api('DELETE', '/rooms/theirs', { as: mine })).status).toBe(403);
    expect((await api('GET', '/rooms/theirs/participants', { as: mine })).status).toBe(403);
    expect((await api('GET', '/rooms', { as: mine })).status).toBe(403);
    const joiner = await token({ roomJoin: true, canPublish: true }, 'mine');
    expect((await api('DELETE', '/rooms/mine', { as: joiner })).status).toBe(403);
    expect((await api('GET', '/rooms/theirs')).status).toBe(200);
  });

  it("lists a room's participants with their tracks, removes one, and a delete ends the live room", async () => {
    const room = await conferenceWith('alice');
    expect((await api('POST', '/rooms', { body: { name: room } })).status).toBe(201);
    await conferenceWith('bob', room);
    await eventually(async () => (await participantsOf(room)).length === 2, 15_000, 'alice and bob listed');
    const [alice] = await participantsOf(room);
    expect(alice).toMatchObject({ identity: 'alice', node: expect.any(String) as unknown });
    expect(alice!.tracks).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'video' }),
        expect.objectContaining({ kind: 'audio' }),
      ]),
    );
    expect((await api('GET', `/rooms/${room}`)).body).toMatchObject({ numParticipants: 2 });

    expect((await api('DELETE', `/rooms/${room}/participants/alice`)).status).toBe(204);
    await eventually(
      async () => (await participantsOf(room)).map((p) => p.identity).join() === 'bob',
      15_000,
      'alice removed',
    );
    expect(await api('DELETE', `/rooms/${room}/participants/alice`)).toMatchObject({ status: 404 });
    expect(await api('DELETE', `/rooms/${room}/participants/nobody`)).toMatchObject({ status: 404 });

    expect((await api('DELETE', `/rooms/${room}`)).status).toBe(204);
    await eventually(
      () => ts.server.engine.rooms.get('conference', room) === undefined,
      15_000,
      'live room closed',
    );
  });
});

describe('OpenAPI', () => {
  it('serves a spec generated from the routes and a docs page that renders it', async () => {
    const spec = (await (await fetch(`${ts.url}/chorus/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: {
              content: Record<
                string,
                { schema: { required?: string[]; properties: Record<string, unknown> } }
              >;
            };
            responses: Record<string, unknown>;
          }
        >
      >;
    };
    expect(spec.openapi).toBe('3.1.0');
    // The room service's paths (WHIP/WHEP's are checked in chorus-whip.test.ts).
    expect(
      Object.keys(spec.paths)
        .filter((p) => p.startsWith('/chorus/v1/rooms'))
        .sort(),
    ).toEqual([
      '/chorus/v1/rooms',
      '/chorus/v1/rooms/{name}',
      '/chorus/v1/rooms/{name}/data',
      '/chorus/v1/rooms/{name}/participants',
      '/chorus/v1/rooms/{name}/participants/{identity}',
      '/chorus/v1/rooms/{name}/participants/{identity}/tracks/{track}/mute',
    ]);
    expect(Object.keys(spec.paths['/chorus/v1/rooms/{name}']!).sort()).toEqual(['delete', 'get', 'patch']);
    const create = spec.paths['/chorus/v1/rooms']!.post!;
    const schema = create.requestBody!.content['application/json']!.schema;
    expect(Object.keys(schema.properties).sort()).toEqual(['maxParticipants', 'metadata', 'name']);
    expect(schema.required).toEqual(['name']);
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '403']));

    const page = await fetch(`${ts.url}/chorus/v1/docs`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('/chorus/v1/openapi.json');
    expect(html).not.toMatch(/<script[^>]+src=/);
  });
});
