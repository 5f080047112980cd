import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NdcPublisher } from '../fixtures/ndc-peer.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

// Issue #11, item 11: Blue Sky rooms belong to whoever claims to be their admin, unless
// BLUESKY_SECURE_ROOMS is on.

let open: TestServer;
let secured: TestServer;
let pub: NdcPublisher;
let offer: string;

const json = (method: string, url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
const offerBody = () => ({
  sdp: gzipSync(Buffer.from(JSON.stringify({ type: 'offer', sdp: offer }))).toString('base64'),
});
const publish = (t: TestServer, room: string, user: string, headers: Record<string, string> = {}) =>
  json('POST', `${t.url}/webrtc/sdp/m/${room}/c/${user}/p/${user}/s/true`, offerBody(), headers);

beforeAll(async () => {
  open = await startTestServer({ webrtc: { bindAddress: '127.0.0.1' } });
  secured = await startTestServer({ webrtc: { bindAddress: '127.0.0.1' }, bluesky: { secureRooms: true } });
  pub = new NdcPublisher();
  offer = await new Promise<string>((resolve) => {
    pub.pc.onGatheringStateChange((s) => {
      if (s === 'complete') resolve(pub.pc.localDescription()!.sdp);
    });
    pub.pc.setLocalDescription();
  });
});
afterAll(async () => {
  pub.close();
  await open.close();
  await secured.close();
});

describe('default mode: the seed behaviour', () => {
  it('creates rooms without keys, closes them by the admin user_id, takes SDP without a key', async () => {
    const res = await json('PUT', `${open.url}/webrtc/room`, { user_id: 'alice' });
    expect(res.status).toBe(201);
    const created = (await res.json()) as Record<string, string>;
    expect(Object.keys(created)).toEqual(['id']);
    expect(
      (await json('POST', `${open.url}/webrtc/room/${created.id}/join`, { user_id: 'bob' })).status,
    ).toBe(200);
    expect((await publish(open, created.id!, 'bob')).status).toBe(200);
    expect(
      (await json('DELETE', `${open.url}/webrtc/room/${created.id}`, { user_id: 'mallory' })).status,
    ).toBe(403);
    expect((await json('DELETE', `${open.url}/webrtc/room/${created.id}`, { user_id: 'alice' })).status).toBe(
      204,
    );
  });
});

describe('secured mode (BLUESKY_SECURE_ROOMS=YES)', () => {
  let room: string;
  let adminKey: string;
  let aliceKey: string;

  beforeAll(async () => {
    const res = await json('PUT', `${secured.url}/webrtc/room`, { user_id: 'alice' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string; admin_key: string; participant_key: string };
    ({ id: room, admin_key: adminKey, participant_key: aliceKey } = body);
    expect(adminKey).toMatch(/^[-_A-Za-z0-9]{32}$/);
    expect(aliceKey).toMatch(/^[-_A-Za-z0-9]{32}$/);
    expect(aliceKey).not.toBe(adminKey);
  });

  it('never shows a key in GET answers', async () => {
    const text = [
      await (await fetch(`${secured.url}/webrtc/room`)).text(),
      await (await fetch(`${secured.url}/webrtc/room/${room}`)).text(),
      await (await fetch(`${secured.url}/webrtc/room/${room}/stats`)).text(),
    ].join('\n');
    expect(text).toContain(room);
    expect(text).not.toContain(adminKey);
    expect(text).not.toContain(aliceKey);
  });

  it('refuses to close a room to a forged admin (401 without a key, 403 with a wrong one) and closes it for the key holder', async () => {
    const other = (await (await json('PUT', `${secured.url}/webrtc/room`, { user_id: 'carol' })).json()) as {
      id: string;
      admin_key: string;
    };
    const url = `${secured.url}/webrtc/room/${other.id}`;
    const noKey = await json('DELETE', url, { user_id: 'carol' });
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { error: string }).error).toMatch(/X-Admin-Key/i);
    expect((await json('DELETE', url, { user_id: 'carol' }, { 'x-admin-key': 'guess' })).status).toBe(403);
    // Another room's admin key is no key here.
    expect((await json('DELETE', url, { user_id: 'carol' }, { 'x-admin-key': adminKey })).status).toBe(403);
    expect(await (await fetch(`${secured.url}/webrtc/room`)).json()).toContain(other.id);
    expect((await json('DELETE', url, {}, { 'x-admin-key': other.admin_key })).status).toBe(204);
    expect(await (await fetch(`${secured.url}/webrtc/room`)).json()).not.toContain(other.id);
  });

  it('refuses to publish as someone else; a participant publishes with its own key', async () => {
    expect((await publish(secured, room, 'alice')).status).toBe(401);
    expect((await publish(secured, room, 'alice', { 'x-participant-key': 'forged' })).status).toBe(403);
    const joined = await json('POST', `${secured.url}/webrtc/room/${room}/join`, { user_id: 'bob' });
    expect(joined.status).toBe(201);
    const { participant_key: bobKey } = (await joined.json()) as { participant_key: string };
    // A user id is claimed once: nobody else can join as bob.
    const again = await json('POST', `${secured.url}/webrtc/room/${room}/join`, { user_id: 'bob' });
    expect(again.status).toBe(409);
    // Bob's key does not make him alice, and alice's key is not bob's.
    expect((await publish(secured, room, 'alice', { 'x-participant-key': bobKey })).status).toBe(403);
    expect((await publish(secured, room, 'bob', { 'x-participant-key': aliceKey })).status).toBe(403);
    const ok = await publish(secured, room, 'bob', { 'x-participant-key': bobKey });
    expect(ok.status).toBe(200);
    expect(Object.keys((await ok.json()) as object)).toEqual(['sdp']);
    expect((await publish(secured, room, 'alice', { 'x-participant-key': aliceKey })).status).toBe(200);
    // The admin key does not close the room when given as a participant key, nor vice versa.
    expect(
      (await json('DELETE', `${secured.url}/webrtc/room/${room}`, {}, { 'x-admin-key': aliceKey })).status,
    ).toBe(403);
  });

  it('refuses receivers without their key too, and unknown rooms stay 404', async () => {
    const res = await json(
      'POST',
      `${secured.url}/webrtc/sdp/m/${room}/c/mallory/p/alice/s/false`,
      offerBody(),
    );
    expect(res.status).toBe(401);
    expect((await json('POST', `${secured.url}/webrtc/room/nope/join`, { user_id: 'x' })).status).toBe(404);
    expect(
      (await json('POST', `${secured.url}/webrtc/room/${room}/join`, { user_id: 'has space' })).status,
    ).toBe(400);
  });
});
