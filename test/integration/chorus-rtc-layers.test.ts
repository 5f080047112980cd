import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { RtcClient, videoOf } from '../fixtures/rtc-client.js';
import { eventually } from '../fixtures/ws-client.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

/**
 * The native signalling's `trackSettings` (adaptive stream, #18 item 2): checked, refused
 * for tracks the client does not receive, and, with `active: false`, the server stops a
 * video to that client (a node-datachannel publisher's VP8; the simulcast side runs in
 * Chromium: test/e2e/sdk-layers.test.ts).
 */

const KEY = 'layers-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters-for-layers';
const MEMBER: Grants = { roomJoin: true, canPublish: true, canSubscribe: true };

let ts: TestServer;
const clients: RtcClient[] = [];
beforeAll(async () => {
  ts = await startTestServer({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { udpPort: await freeUdpPort(), bindAddress: '127.0.0.1' },
  });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await ts.close();
});

async function join(room: string, identity: string, grants: Grants = MEMBER): Promise<RtcClient> {
  const token = await createAccessToken(KEY, SECRET, { grants, ttlSeconds: 300, room, identity });
  const { client } = await RtcClient.connect(ts.url, token);
  clients.push(client);
  return client;
}

describe('native signalling: trackSettings', () => {
  it('applies a subscriber`s settings to its leg, and refuses bad ones with errors the session survives', async () => {
    const alice = await join('ts1', 'alice');
    const bob = await join('ts1', 'bob');
    await alice.publish();
    await bob.wait(videoOf('alice'), 20_000);

    // Before bob receives anything, there is nothing to set.
    expect(
      await bob.request({ type: 'trackSettings', identity: 'alice', trackId: 'alice-video', width: 320 }),
    ).toMatchObject({ type: 'error', code: 'not_found' });

    const sub = await bob.subscribe('alice');
    await eventually(() => sub.videoPackets.length > 20, 30_000, 'video at bob');
    expect(
      await bob.request({
        type: 'trackSettings',
        identity: 'alice',
        trackId: 'alice-video',
        width: 320,
        height: 180,
      }),
    ).toMatchObject({ type: 'ok', for: 'trackSettings' });

    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ identity: 'alice', trackId: 'alice-screen' }, 'not_found'], // not a track of the leg
      [{ identity: 'alice', trackId: 'alice-audio', active: false }, 'not_found'], // audio: no layers
      [{ identity: 'nobody', trackId: 'nobody-video' }, 'not_found'],
      [{ identity: 'alice', trackId: 'alice-video', width: -1 }, 'invalid_message'],
      [{ identity: 'alice', trackId: 'alice-video', width: 1.5 }, 'invalid_message'],
      [{ identity: 'alice', trackId: 'alice-video', height: 20_000 }, 'invalid_message'],
      [{ identity: 'alice', trackId: 'alice-video', active: 'no' }, 'invalid_message'],
      [{ identity: 'alice', trackId: '' }, 'invalid_message'],
      [{ trackId: 'alice-video' }, 'invalid_message'],
    ];
    for (const [fields, code] of refusals)
      expect(await bob.request({ type: 'trackSettings', ...fields }), JSON.stringify(fields)).toMatchObject({
        type: 'error',
        code,
      });
    // Still connected: the session answers.
    expect(await bob.request({ type: 'ping', timestamp: 1 })).toMatchObject({ type: 'pong' });
  }, 90_000);

  it('needs canSubscribe', async () => {
    await join('ts2', 'alice');
    const viewer = await join('ts2', 'mallory', { roomJoin: true, canPublish: true });
    expect(
      await viewer.request({
        type: 'trackSettings',
        identity: 'alice',
        trackId: 'alice-video',
        active: false,
      }),
    ).toMatchObject({ type: 'error', code: 'forbidden' });
  }, 60_000);
});
