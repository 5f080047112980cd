import { describe, expect, it } from 'vitest';
import {
  chooseLayer,
  estimateCovers,
  rankLayers,
  TRY_UP_COVER,
  wantedLayers,
  type LayerState,
} from '../../src/media/webrtc/layer-choice.js';
import { parseSdp } from '../../src/media/webrtc/sdp.js';
import {
  answerSimulcast,
  keepSimulcast,
  readSimulcast,
  RID_EXTENSION,
  routable,
} from '../../src/media/webrtc/simulcast-sdp.js';

const video = (extra: string[]): string =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
    'a=mid:0',
    'a=sendonly',
    'a=rtpmap:96 VP8/90000',
    'a=rtpmap:97 rtx/90000',
    'a=fmtp:97 apt=96',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    `a=extmap:10 ${RID_EXTENSION}`,
    'a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    ...extra,
    '',
  ].join('\r\n');

describe('simulcast in SDP', () => {
  it('reads rid simulcast (paused and alternative streams too) and keeps its lines', () => {
    const m = parseSdp(
      video(['a=rid:q send', 'a=rid:h send max-width=640', 'a=rid:f send', 'a=simulcast:send q;~h;f,x']),
    ).media[0]!;
    const s = readSimulcast(m)!;
    expect(s.rids).toEqual(['q', 'h', 'f']);
    expect(s.ridExtension).toBe(10);
    expect(s.lines).toEqual([
      'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
      `a=extmap:10 ${RID_EXTENSION}`,
      'a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
      'a=rid:q send',
      'a=rid:h send',
      'a=rid:f send',
      'a=simulcast:send q;h;f',
    ]);
    m.lines = m.lines.slice(0, 4);
    keepSimulcast(m, s);
    expect(m.lines).toContain('a=simulcast:send q;h;f');
  });

  it('reads SSRC simulcast (a=ssrc-group:SIM)', () => {
    const m = parseSdp(video(['a=ssrc-group:SIM 11 22 33', 'a=ssrc:11 cname:x', 'a=ssrc:22 cname:x']))
      .media[0]!;
    expect(readSimulcast(m)).toMatchObject({ rids: [], ssrcs: [11, 22, 33] });
  });

  it('one encoding, undeclared rids, rids without the rid extension, bad rids: no simulcast', () => {
    expect(readSimulcast(parseSdp(video([])).media[0]!)).toBeUndefined();
    expect(readSimulcast(parseSdp(video(['a=simulcast:send q;h'])).media[0]!)).toBeUndefined();
    const noExt = video(['a=rid:q send', 'a=rid:h send', 'a=simulcast:send q;h']).replace(
      /a=extmap:10 .*\r\n/,
      '',
    );
    expect(readSimulcast(parseSdp(noExt).media[0]!)).toBeUndefined();
    const bad = video(['a=rid:q send', 'a=rid:<script> send', 'a=simulcast:send q;<script>']);
    expect(readSimulcast(parseSdp(bad).media[0]!)).toBeUndefined();
  });

  it('rid layers are routable alone on the connection, or with their SSRCs listed', () => {
    const rid = readSimulcast(
      parseSdp(video(['a=rid:q send', 'a=rid:f send', 'a=simulcast:send q;f'])).media[0]!,
    )!;
    expect(routable(rid, 1)).toBe(true);
    expect(routable(rid, 2)).toBe(false);
    const listed = video([
      'a=rid:q send',
      'a=rid:f send',
      'a=simulcast:send q;f',
      'a=ssrc:5 cname:x',
      'a=ssrc:6 cname:x',
    ]);
    expect(routable(readSimulcast(parseSdp(listed).media[0]!)!, 2)).toBe(true);
    const sim = readSimulcast(
      parseSdp(video(['a=ssrc-group:SIM 1 2', 'a=ssrc:1 cname:x', 'a=ssrc:2 cname:x'])).media[0]!,
    )!;
    expect(routable(sim, 2)).toBe(true);
  });

  it('turns the answer around: rids and simulcast received, no copied groups', () => {
    const answer = video([
      'a=rid:q send',
      'a=rid:f send',
      'a=simulcast:send q;f',
      'a=ssrc-group:SIM 1 2',
    ]).replace('a=sendonly', 'a=recvonly');
    const offer = readSimulcast(
      parseSdp(video(['a=rid:q send', 'a=rid:f send', 'a=simulcast:send q;f'])).media[0]!,
    )!;
    const out = answerSimulcast(answer, new Map([['0', offer]]));
    expect(out).toContain('a=rid:q recv\r\na=rid:f recv\r\na=simulcast:recv q;f\r\n');
    expect(out).not.toMatch(/send|ssrc-group/);
  });
});

const layer = (bps: number, width = 0, active = true): LayerState => ({
  active,
  bps,
  width,
  height: (width * 9) / 16,
});

describe('layer choice', () => {
  const three = [layer(150_000, 320), layer(500_000, 640), layer(1_700_000, 1280)];

  it('ranks by width, else by bitrate, else in the offer order', () => {
    expect(rankLayers([layer(1, 1280), layer(2, 320), layer(3, 640)])).toEqual([1, 2, 0]);
    expect(rankLayers([layer(900), layer(100), layer(0)])).toEqual([0, 1, 2]);
    expect(rankLayers([layer(900), layer(100), layer(400)])).toEqual([1, 2, 0]);
  });

  it('takes the top layer without an estimate or a size, the one the bandwidth fits otherwise', () => {
    const none = { maxWidth: 0, maxHeight: 0 };
    expect(chooseLayer(three, -1, none, -1)).toBe(2);
    expect(chooseLayer(three, 2, none, 2_000_000)).toBe(2);
    expect(chooseLayer(three, 2, none, 800_000)).toBe(1);
    expect(chooseLayer(three, 2, none, 50_000)).toBe(0); // the floor: the lowest layer
    // Going up needs headroom; staying tolerates a REMB a little under the layer's rate.
    expect(chooseLayer(three, 1, none, 1_800_000)).toBe(1);
    expect(chooseLayer(three, 2, none, 1_500_000)).toBe(2);
  });

  it('a try up needs an estimate covering the layer with a margin, the layer sent and measured', () => {
    const up = layer(500_000, 640);
    expect(estimateCovers(500_000 * TRY_UP_COVER, up)).toBe(true);
    expect(estimateCovers(500_000, up)).toBe(false); // no margin
    expect(estimateCovers(235_000, up)).toBe(false); // 1.5x a 150k layer: libwebrtc's ceiling
    expect(estimateCovers(-1, up)).toBe(false); // no estimate
    expect(estimateCovers(2_000_000, layer(500_000, 640, false))).toBe(false); // paused
    expect(estimateCovers(2_000_000, layer(0, 640))).toBe(false); // not measured yet
  });

  it('takes the smallest layer at least as large as the element; skips paused layers', () => {
    expect(chooseLayer(three, -1, { maxWidth: 320, maxHeight: 0 }, -1)).toBe(0);
    expect(chooseLayer(three, -1, { maxWidth: 400, maxHeight: 0 }, -1)).toBe(1);
    expect(chooseLayer(three, -1, { maxWidth: 0, maxHeight: 700 }, -1)).toBe(2);
    expect(chooseLayer(three, -1, { maxWidth: 4000, maxHeight: 0 }, -1)).toBe(2);
    const paused = [layer(150_000, 320), layer(500_000, 640, false), layer(1_700_000, 1280, false)];
    expect(chooseLayer(paused, -1, { maxWidth: 0, maxHeight: 0 }, -1)).toBe(0);
    expect(
      chooseLayer(
        three.map((l) => ({ ...l, active: false })),
        -1,
        { maxWidth: 0, maxHeight: 0 },
        -1,
      ),
    ).toBe(-1);
  });

  it('wants the layers up to the largest any leg may take; the lowest alone without legs; all when relayed', () => {
    const small = { maxWidth: 320, maxHeight: 0 };
    expect(wantedLayers(three, [small, small], false)).toEqual([true, false, false]);
    expect(wantedLayers(three, [small, { maxWidth: 600, maxHeight: 0 }], false)).toEqual([true, true, false]);
    expect(wantedLayers(three, [small, { maxWidth: 0, maxHeight: 0 }], false)).toEqual([true, true, true]);
    expect(wantedLayers(three, [], false)).toEqual([true, false, false]);
    expect(wantedLayers(three, [small], true)).toEqual([true, true, true]);
  });
});
