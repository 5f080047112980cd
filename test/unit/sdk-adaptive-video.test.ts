import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveVideo, SETTLE_MS, videoSettings, type VideoSettings } from '../../sdk/src/adaptive-video.js';
import { applyWantedLayers, simulcastEncodings } from '../../sdk/src/simulcast-encodings.js';

/** An element as the observers see it (Node has no DOM): its size and whether it is in the document. */
const element = (clientWidth: number, clientHeight: number): HTMLElement =>
  ({ clientWidth, clientHeight, isConnected: true }) as unknown as HTMLElement;

describe('videoSettings: where a video is shown -> what the server is asked for', () => {
  const on = { enabled: true };
  it('takes the largest visible element, and is inactive when none is visible', () => {
    const views = [
      { width: 320, height: 180, visible: true },
      { width: 1280, height: 720, visible: false },
      { width: 640, height: 200, visible: true },
    ];
    expect(videoSettings(views, on, false)).toEqual({ width: 640, height: 200, active: true });
    expect(videoSettings([{ width: 640, height: 360, visible: false }], on, false)).toMatchObject({
      active: false,
    });
  });
  it('a hidden page, or turned off, is inactive; no element at all is no limit', () => {
    const views = [{ width: 320, height: 180, visible: true }];
    expect(videoSettings(views, on, true).active).toBe(false);
    expect(videoSettings(views, { enabled: false }, false).active).toBe(false);
    expect(videoSettings([], on, true)).toEqual({ width: 0, height: 0, active: true });
  });
  it('an explicit size wins over the elements; device pixels are rounded up', () => {
    const views = [{ width: 320.4, height: 180.2, visible: true }];
    expect(videoSettings(views, on, false)).toEqual({ width: 321, height: 181, active: true });
    expect(videoSettings(views, { enabled: true, size: { width: 100, height: 50 } }, false)).toEqual({
      width: 100,
      height: 50,
      active: true,
    });
  });
});

describe('AdaptiveVideo: debounced element changes, immediate explicit ones', () => {
  afterEach(() => vi.useRealTimers());

  it('sends an element`s size once it settled, only what changed, and again on a new leg', () => {
    vi.useFakeTimers();
    const sent: VideoSettings[] = [];
    const a = new AdaptiveVideo((s) => (sent.push(s), true));
    const el = element(160, 90);
    a.observe(el);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(SETTLE_MS);
    expect(sent).toEqual([{ width: 160, height: 90, active: true }]);
    // A resize drag: many changes, one message with the last size.
    for (let w = 170; w <= 400; w += 10) {
      a.noteView(el, { width: w, height: 200, visible: true });
      vi.advanceTimersByTime(SETTLE_MS / 3);
    }
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(SETTLE_MS);
    expect(sent.at(-1)).toEqual({ width: 400, height: 200, active: true });
    // The same again: nothing sent.
    a.noteView(el, { width: 400, height: 200, visible: true });
    vi.advanceTimersByTime(SETTLE_MS);
    expect(sent).toHaveLength(2);
    // Explicit settings go at once.
    a.setEnabled(false);
    expect(sent.at(-1)).toEqual({ width: 400, height: 200, active: false });
    a.setEnabled(true);
    a.setVideoSize({ width: 99.2, height: 0 });
    expect(sent.at(-1)).toEqual({ width: 100, height: 0, active: true });
    // A new leg starts at the server's defaults: what differs is sent again.
    const before = sent.length;
    a.newLeg();
    expect(sent.length).toBe(before + 1);
    a.unobserve(el);
    vi.advanceTimersByTime(SETTLE_MS);
    a.close();
  });

  it('keeps what could not be sent (not subscribed yet) for later', () => {
    vi.useFakeTimers();
    let subscribed = false;
    const sent: VideoSettings[] = [];
    const a = new AdaptiveVideo((s) => subscribed && (sent.push(s), true));
    a.observe(element(320, 180));
    vi.advanceTimersByTime(SETTLE_MS);
    expect(sent).toEqual([]);
    subscribed = true;
    a.newLeg();
    expect(sent).toEqual([{ width: 320, height: 180, active: true }]);
    a.close();
  });

  it('an element not in the document, or of no size, is not visible', () => {
    vi.useFakeTimers();
    const sent: VideoSettings[] = [];
    const a = new AdaptiveVideo((s) => (sent.push(s), true));
    a.observe({ clientWidth: 320, clientHeight: 180, isConnected: false } as unknown as HTMLElement);
    vi.advanceTimersByTime(SETTLE_MS);
    expect(sent).toEqual([{ width: 0, height: 0, active: false }]);
    a.close();
  });
});

describe('simulcastEncodings', () => {
  it('three rid layers at 1/4, 1/2 and full size with rising ceilings, from 360 pixels up', () => {
    const e = simulcastEncodings(1280, 720)!;
    expect(e.map((x) => [x.rid, x.scaleResolutionDownBy])).toEqual([
      ['q', 4],
      ['h', 2],
      ['f', 1],
    ]);
    expect(e[0]!.maxBitrate!).toBeLessThan(e[1]!.maxBitrate!);
    expect(e[1]!.maxBitrate!).toBeLessThan(e[2]!.maxBitrate!);
    expect(simulcastEncodings(640, 360)).toHaveLength(3);
    expect(simulcastEncodings(320, 240)).toBeUndefined();
    expect(simulcastEncodings(0, 0)).toBeUndefined();
  });
  it('applies layersWanted by rid, saying whether anything changed', () => {
    const e = simulcastEncodings(1280, 720)!;
    expect(
      applyWantedLayers(e, [
        { rid: 'f', active: false },
        { rid: 'x', active: false },
      ]),
    ).toBe(true);
    expect(e.map((x) => x.active)).toEqual([true, true, false]);
    expect(applyWantedLayers(e, [{ rid: 'f', active: false }])).toBe(false);
    expect(applyWantedLayers(e, [{ rid: 'f', active: true }])).toBe(true);
  });
});
