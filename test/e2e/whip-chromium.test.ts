import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { createAccessToken, type Grants } from '../../src/api/chorus/access-token.js';
import { browserSuite } from '../fixtures/browser.js';
import { hasTool } from '../fixtures/system-tools.js';
import { untilStill } from '../fixtures/until-still.js';
import { eventually } from '../fixtures/ws-client.js';

// Chromium as a WHIP publisher (its fake camera and microphone, real VP8 and Opus; on the
// server's origin, a secure context for getUserMedia) and as a WHEP player that decodes the
// frames from about:blank: its requests cross origins, so the CORS preflight
// (Authorization, content-type) is exercised too.

const KEY = 'whip-e2e-key';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

const token = (grants: Grants, room?: string, identity?: string): Promise<string> =>
  createAccessToken(KEY, SECRET, {
    grants,
    ttlSeconds: 600,
    ...(room ? { room } : {}),
    ...(identity ? { identity } : {}),
  });

/**
 * Runs a WHIP (`send`) or WHEP (`receive`) session in the page: a non-trickle offer
 * (gathering complete) POSTed as application/sdp, the answer applied. The page keeps the
 * peer connection in `window.pc` and the session URL in `window.location_`.
 */
async function session(
  page: Page,
  endpoint: string,
  bearer: string,
  mode: 'send' | 'receive',
  /** Offer this video codec alone (send). */
  videoCodec = '',
): Promise<number> {
  return page.evaluate(
    async ({ endpoint, bearer, mode, videoCodec }) => {
      const pc = new RTCPeerConnection();
      (window as unknown as { pc: RTCPeerConnection }).pc = pc;
      if (mode === 'send') {
        const media = await navigator.mediaDevices.getUserMedia({
          audio: true,
          video: { width: 320, height: 240 },
        });
        for (const t of media.getTracks()) {
          const tr = pc.addTransceiver(t, { direction: 'sendonly' });
          // Offer this codec alone, as ffmpeg's and OBS's WHIP clients offer H.264 alone.
          if (t.kind === 'video' && videoCodec)
            tr.setCodecPreferences(
              RTCRtpSender.getCapabilities('video')!.codecs.filter((c) => c.mimeType === videoCodec),
            );
        }
      } else {
        pc.addTransceiver('video', { direction: 'recvonly' });
        pc.addTransceiver('audio', { direction: 'recvonly' });
      }
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') resolve();
        });
      });
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${bearer}` },
        body: pc.localDescription!.sdp,
      });
      if (res.status !== 201) return res.status;
      (window as unknown as { location_: string }).location_ = new URL(
        res.headers.get('location')!,
        endpoint,
      ).href;
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      return res.status;
    },
    { endpoint, bearer, mode, videoCodec },
  );
}

/** The player's decoded video frames and received audio packets (getStats). */
function received(page: Page): Promise<{ frames: number; audio: number; videoCodec: string }> {
  return page.evaluate(async () => {
    type Stat = {
      type: string;
      kind?: string;
      framesDecoded?: number;
      packetsReceived?: number;
      codecId?: string;
      mimeType?: string;
    };
    const stats = await (window as unknown as { pc: RTCPeerConnection }).pc.getStats();
    let frames = 0;
    let audio = 0;
    let videoCodec = '';
    stats.forEach((s: Stat) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') {
        frames += s.framesDecoded ?? 0;
        videoCodec = s.codecId ? ((stats.get(s.codecId) as Stat | undefined)?.mimeType ?? '') : '';
      }
      if (s.kind === 'audio') audio += s.packetsReceived ?? 0;
    });
    return { frames, audio, videoCodec };
  });
}

const run = hasTool('chromium', 'chromium');

describe.skipIf(!run)('WHIP and WHEP with Chromium', () => {
  const suite = browserSuite(() => ({
    chorus: { apiKeys: [`${KEY}:${SECRET}`] },
    webrtc: { bindAddress: '127.0.0.1' },
  }));

  it('Chromium publishes its camera over WHIP and another Chromium decodes it over WHEP; DELETE stops the frames', async () => {
    const base = `${suite.server.url}/chorus/v1`;
    const admin = await token({ roomCreate: true });
    const created = await fetch(`${base}/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'browser' }),
    });
    expect(created.status).toBe(201);

    const publisher = await suite.newPage();
    await publisher.goto(`${base}/docs`);
    const pubToken = await token({ roomJoin: true, canPublish: true }, 'browser', 'camera-page');
    expect(await session(publisher, `${base}/whip/browser`, pubToken, 'send')).toBe(201);

    const player = await suite.newPage();
    const viewToken = await token({ roomJoin: true, canSubscribe: true }, 'browser', 'player-page');
    expect(await session(player, `${base}/whep/browser/camera-page`, viewToken, 'receive')).toBe(201);
    await eventually(
      async () => {
        const r = await received(player);
        return r.frames > 10 && r.audio > 20;
      },
      30_000,
      'decoded frames and audio at the WHEP player',
    );

    // The publisher ends its session from the page (a cross-origin DELETE): frames stop.
    const status = await publisher.evaluate(async (bearer) => {
      const res = await fetch((window as unknown as { location_: string }).location_, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${bearer}` },
      });
      return res.status;
    }, pubToken);
    expect(status).toBe(200);
    await untilStill(async () => (await received(player)).frames, 'frames to stop after DELETE');
  }, 120_000);

  it('an H.264-only WHIP publisher (what ffmpeg and OBS send) is decoded by a WHEP player as H.264', async () => {
    const base = `${suite.server.url}/chorus/v1`;
    const created = await fetch(`${base}/rooms`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await token({ roomCreate: true })}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ name: 'browser-h264' }),
    });
    expect(created.status).toBe(201);
    const publisher = await suite.newPage();
    await publisher.goto(`${base}/docs`);
    const pubToken = await token({ roomJoin: true, canPublish: true }, 'browser-h264', 'encoder');
    expect(await session(publisher, `${base}/whip/browser-h264`, pubToken, 'send', 'video/H264')).toBe(201);
    const player = await suite.newPage();
    const viewToken = await token({ roomJoin: true, canSubscribe: true }, 'browser-h264', 'player');
    expect(await session(player, `${base}/whep/browser-h264/encoder`, viewToken, 'receive')).toBe(201);
    let last = { frames: 0, audio: 0, videoCodec: '' };
    await eventually(
      async () => {
        last = await received(player);
        return last.frames > 10;
      },
      30_000,
      'decoded H.264 frames at the WHEP player',
    );
    expect(last.videoCodec).toBe('video/H264');
  }, 120_000);
});
