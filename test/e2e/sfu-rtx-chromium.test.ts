import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { browserSuite } from '../fixtures/browser.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { eventually } from '../fixtures/ws-client.js';
import { publishCamera } from '../fixtures/codec-pages.js';
import { LossyUdpRelay, answerThroughRelay } from '../fixtures/lossy-udp-relay.js';
import { asUserId } from '../../src/core/ids.js';
import { asRoomId } from '../../src/core/room-types.js';

// Issue 18 item 3 proven with Chromium on both ends: the publisher's packets cross a
// relay that loses some of them on the way in (packet loss only: no shaping), the SFU
// NACKs the publisher, Chromium retransmits as RTX, and the subscriber decodes about as
// many frames as were sent. Item 5: Opus RED negotiated with Chromium stays in the answer.

const haveChromium = hasTool('chromium', 'chromium');

/** What the pages' getStats say. */
interface Outbound {
  framesEncoded: number;
  packetsSent: number;
  retransmittedPacketsSent: number;
  nackCount: number;
}
interface Inbound {
  framesDecoded: number;
  packetsLost: number;
  audioPackets: number;
}

/** Counts RTP datagrams by payload type (SRTP leaves the RTP header in the clear). */
function countPayloadTypes(counts: Map<number, number>): (index: number, size: number, d: Buffer) => boolean {
  return (_index, _size, d) => {
    // RTP (RFC 7983: first byte 128-191), not RTCP (payload types 192-223 in byte 1).
    if (d.length > 12 && d[0]! >= 128 && d[0]! <= 191 && !(d[1]! >= 192 && d[1]! <= 223)) {
      const pt = d[1]! & 0x7f;
      counts.set(pt, (counts.get(pt) ?? 0) + 1);
    }
    return false;
  };
}

async function outbound(page: Page): Promise<Outbound> {
  return page.evaluate<Outbound>(`(async () => {
    for (const s of (await window.pc.getStats()).values())
      if (s.type === 'outbound-rtp' && s.kind === 'video')
        return { framesEncoded: s.framesEncoded ?? 0, packetsSent: s.packetsSent ?? 0,
          retransmittedPacketsSent: s.retransmittedPacketsSent ?? 0, nackCount: s.nackCount ?? 0 };
    return { framesEncoded: 0, packetsSent: 0, retransmittedPacketsSent: 0, nackCount: 0 };
  })()`);
}

async function inbound(page: Page): Promise<Inbound> {
  return page.evaluate<Inbound>(`(async () => {
    const out = { framesDecoded: 0, packetsLost: 0, audioPackets: 0 };
    if (!window.pc) return out;
    const stats = await window.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.framesDecoded = s.framesDecoded ?? 0;
        out.packetsLost = s.packetsLost ?? 0;
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPackets = s.packetsReceived ?? 0;
    }
    return out;
  })()`);
}

/** The page receives audio and video through its own recvonly offer (Chromium's codecs: RTX, RED). */
async function subscribe(page: Page, exchange: (offer: string) => Promise<string>): Promise<void> {
  await page.exposeFunction('chorusExchange', exchange);
  await page.evaluate(`(async () => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      const el = document.createElement(e.track.kind);
      el.muted = true;
      el.autoplay = true;
      el.srcObject = new MediaStream([e.track]);
      document.body.append(el);
    };
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== 'complete')
      await new Promise((r) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()));
    const answer = await window.chorusExchange(pc.localDescription.sdp);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  })()`);
}

describe.runIf(haveChromium)('RTX and RED with Chromium (#18)', () => {
  let udpPort = 0;
  const suite = browserSuite(async () => ({
    webrtc: { udpPort: (udpPort = await freeUdpPort()), bindAddress: '127.0.0.1' },
  }));

  it('recovers packets the publisher lost on the way in (NACK, RTX): the subscriber decodes what was sent', async () => {
    const engine = suite.server.server.engine;
    const sfu = engine.sfu;
    const room = engine.rooms.open(asRoomId('rtx-loss'), { kind: 'conference', metadata: null });
    // Past the handshake, every 25th large datagram from the publisher (its video) is lost.
    let large = 0;
    const fromPublisher = new Map<number, number>();
    const count = countPayloadTypes(fromPublisher);
    const relay = new LossyUdpRelay(
      udpPort,
      () => false,
      (index, size, d) => count(index, size, d) || (index > 100 && size > 500 && ++large % 25 === 0),
    );
    const relayPort = await relay.start();
    // The subscriber's packets cross a relay too, which only counts them.
    const toSubscriber = new Map<number, number>();
    const watch = new LossyUdpRelay(udpPort, countPayloadTypes(toSubscriber));
    const watchPort = await watch.start();
    const open = async (): Promise<Page> => {
      const page = await suite.newPage();
      await page.goto(`${suite.server.url}/healthz`);
      return page;
    };
    try {
      const publisher = await open();
      let publisherAnswer = '';
      await publishCamera(publisher, async (offer) => {
        publisherAnswer = await sfu.publish(room, asUserId('ada'), offer);
        return answerThroughRelay(relayPort)(publisherAnswer);
      });
      // RTX for the video codec, and Opus RED listed first, are in the publisher's answer.
      const video = publisherAnswer.slice(publisherAnswer.indexOf('m=video'));
      const vp8 = /a=rtpmap:(\d+) VP8\/90000/.exec(video)![1];
      expect(video).toMatch(new RegExp(`a=fmtp:\\d+ apt=${vp8}\\r\\n`));
      const audio = publisherAnswer.slice(
        publisherAnswer.indexOf('m=audio'),
        publisherAnswer.indexOf('m=video'),
      );
      const red = /a=rtpmap:(\d+) red\/48000\/2/.exec(audio)?.[1];
      expect(red).toBeDefined();
      expect(audio).toMatch(new RegExp(`^m=audio \\d+ \\S+ ${red} \\d+`));

      const subscriber = await open();
      let subscriberAnswer = '';
      await subscribe(subscriber, async (offer) => {
        subscriberAnswer = await sfu.subscribe(room, asUserId('bob'), asUserId('ada'), offer);
        return answerThroughRelay(watchPort)(subscriberAnswer);
      });
      expect(subscriberAnswer).toMatch(/a=ssrc-group:FID \d+ \d+/);
      const subscriberRed = Number(/a=rtpmap:(\d+) red\/48000\/2/.exec(subscriberAnswer)?.[1]);

      await eventually(
        async () => relay.droppedToServer >= 20 && (await inbound(subscriber)).framesDecoded > 150,
        60_000,
        'losses on the way in, and frames decoded',
      );
      const sent = await outbound(publisher);
      const got = await inbound(subscriber);
      // The SFU asked, and Chromium resent as RTX.
      expect(sent.nackCount).toBeGreaterThan(0);
      expect(sent.retransmittedPacketsSent).toBeGreaterThanOrEqual(relay.droppedToServer / 2);
      expect(sfu.stats().rtxRepaired).toBeGreaterThanOrEqual(relay.droppedToServer / 2);
      // The subscriber decodes about what was encoded (it joined a moment later), and
      // barely sees the loss: a repaired packet is not lost to it.
      expect(got.framesDecoded).toBeGreaterThan(sent.framesEncoded * 0.8);
      expect(got.packetsLost).toBeLessThan(relay.droppedToServer / 4);
      // Chromium sent its audio as RED (listed first in the answer), and the subscriber,
      // which offered RED, receives RED, with its own payload type, and decodes it.
      expect(fromPublisher.get(Number(red))).toBeGreaterThan(100);
      expect(toSubscriber.get(subscriberRed)).toBeGreaterThan(100);
      expect(got.audioPackets).toBeGreaterThan(100);
    } finally {
      relay.close();
      watch.close();
    }
  }, 120_000);
});
