import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Audio, type PeerConnection, Video } from 'node-datachannel';
import { startCluster, type Cluster } from '../fixtures/cluster.js';
import { NdcClient, NdcSubscriber, type Exchange } from '../fixtures/ndc-peer.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';

// A room's video codec across two real Chorus processes over one nats-server: chosen by
// the first video publisher on node 0, then held by node 1 for its own publishers and
// subscribers (read from the cluster's track directory), and chosen again once nobody
// publishes video any more.

let cluster: Cluster;
const url = (i: number): string => cluster.nodes[i]!.url;
const peers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

/** A node-datachannel publisher offering the given video codecs (and Opus). */
class CodecPublisher extends NdcClient {
  constructor(private readonly codecs: Array<[pt: number, name: string, fmtp?: string]>) {
    super('codec-publisher');
  }
  protected addTracks(pc: PeerConnection): void {
    const v = new Video('video', 'SendOnly');
    for (const [pt, name, fmtp] of this.codecs) {
      if (fmtp) v.addVideoCodec(pt, name, fmtp);
      else v.addVideoCodec(pt, name);
    }
    v.addSSRC(3333, 'pub', 'pubstream', 'pubvideo');
    pc.addTrack(v);
    const a = new Audio('audio', 'SendOnly');
    a.addOpusCodec(111);
    a.addSSRC(4444, 'pub', 'pubstream', 'pubaudio');
    pc.addTrack(a);
  }
  publish(base: string, room: string, user: string): Promise<Exchange> {
    return this.connect(
      base,
      `/webrtc/sdp/m/${room}/c/${user}/p/${user}/s/true`,
      (s) => s,
      (s) => s,
    );
  }
}

/** The video codecs an answer kept, by rtpmap name. */
function videoCodecs(sdp: string | undefined): string[] {
  const section = (sdp ?? '').split(/\r\n(?=m=)/).find((s) => s.startsWith('m=video')) ?? '';
  return [...section.matchAll(/a=rtpmap:\d+ ([^/]+)\//g)].map((m) => m[1]!);
}

const VP8: [number, string] = [96, 'VP8'];
const VP9: [number, string, string] = [98, 'VP9', 'profile-id=0'];

describe.runIf(hasTool('nats-server', 'nats-server'))('a room video codec across nodes', () => {
  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 2,
      env: {
        WEBRTC_BIND_ADDRESS: '127.0.0.1',
        SIGNAL_ENABLED: 'no',
        VOIP_ENABLED: 'no',
        BEEP_ENABLED: 'no',
        STREAM_ENABLED: 'no',
      },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('node 1 holds the codec node 0 chose, for publishers and subscribers, until video stops', async () => {
    const res = await fetch(`${url(0)}/webrtc/room`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 'admin' }),
    });
    const room = ((await res.json()) as { id: string }).id;

    // The first video publisher, on node 0, sends VP9 only: the room's codec is VP9.
    const first = new CodecPublisher([VP9]);
    peers.push(first);
    const a = await first.publish(url(0), room, 'first');
    expect(a.status).toBe(200);
    expect(videoCodecs(a.answer)).toEqual(['VP9']);

    // On node 1, a publisher offering VP8 first (the server's own first choice) gets VP9.
    const second = new CodecPublisher([VP8, VP9]);
    peers.push(second);
    const b = await second.publish(url(1), room, 'second');
    expect(b.status).toBe(200);
    expect(videoCodecs(b.answer)).toEqual(['VP9']);

    // A publisher with VP8 only is refused on node 1, the room's codec named.
    const vp8Only = new CodecPublisher([VP8]);
    peers.push(vp8Only);
    const c = await vp8Only.publish(url(1), room, 'third');
    expect(c.status).toBe(400);
    expect(JSON.stringify(c.error)).toMatch(/VP9 \(profile-id=0\).*does not send it/);

    // A subscriber on node 1 that decodes VP8 only is told it cannot receive the room's
    // video (the publisher it asks for is relayed from node 0).
    const viewer = new NdcSubscriber();
    peers.push(viewer);
    const d = await viewer.subscribe(url(1), room, 'viewer', 'first');
    expect(d.status).toBe(400);
    expect(JSON.stringify(d.error)).toMatch(/VP9.*cannot receive it/);

    // Both video publishers leave: the next one chooses again. A VP8-only offer is
    // answered once no VP9 publisher is left anywhere (each refused offer is a new client).
    first.close();
    second.close();
    let answer: Exchange | undefined;
    await eventually(
      async () => {
        const p = new CodecPublisher([VP8]);
        peers.push(p);
        answer = await p.publish(url(1), room, 'next');
        return answer.status === 200;
      },
      30_000,
      'the room without video publishers',
    );
    expect(videoCodecs(answer!.answer)).toEqual(['VP8']);
  }, 120_000);
});
