import { beforeAll, describe, expect, it } from 'vitest';
import { createOpusDecoder, createOpusEncoder } from '../../src/media/audio/audio-codec.js';
import { AudioMixer, type MixFrame } from '../../src/media/audio/audio-mixer.js';
import { OggOpusWriter } from '../../src/media/audio/ogg-opus-writer.js';
import { FRAME_BYTES, FRAME_SAMPLES } from '../../src/media/audio/pcm-frame.js';
import { PcmInput } from '../../src/media/audio/pcm-input.js';
import { loadResampler } from '../../src/media/audio/resampler.js';
import { endlessWavHeader } from '../../src/media/audio/wav-header.js';
import {
  dominantFrequency,
  ffmpegDecode,
  powerAt,
  rms,
  samplesOf,
  tone,
  ToneSource,
} from '../fixtures/audio.js';
import { LIVE_STREAM_COMPLAINTS, opusinfo } from '../fixtures/opusinfo.js';
import { hasTool } from '../fixtures/system-tools.js';

const haveFfmpeg = hasTool('ffmpeg', 'ffmpeg');
const haveOpusinfo = hasTool('opusinfo', 'opus-tools');

beforeAll(() => loadResampler());

function mixer(backlogPackets = 0) {
  return new AudioMixer({
    opus: { bitrate: 32_000, complexity: 5 },
    backlogPackets,
    onListenerError: (err) => {
      throw err;
    },
  });
}

/** Subscribes a listener that keeps every frame's PCM and Opus packet. */
function record(m: AudioMixer, speaker?: string) {
  const pcm: Buffer[] = [];
  const packets: Uint8Array[] = [];
  const sub = m.listen(
    {
      onFrame: (f: MixFrame) => {
        pcm.push(Buffer.from(f.pcm));
        packets.push(f.opus());
      },
    },
    speaker,
  );
  return { sub, packets, samples: () => samplesOf(Buffer.concat(pcm)) };
}

/** Speakers a and b in one mixer, each recorded, plus a pure listener. */
function twoSpeakers() {
  const m = mixer();
  const a = new PcmInput();
  const b = new PcmInput();
  m.addInput('a', a);
  m.addInput('b', b);
  return { m, a, b, heardByA: record(m, 'a'), heardByB: record(m, 'b'), heardByL: record(m) };
}

describe('PcmInput', () => {
  it('reassembles odd-sized chunks into whole frames', () => {
    const input = new PcmInput();
    const pcm = tone(440, 100);
    for (let at = 0; at < pcm.length; at += 333) input.write(pcm.subarray(at, at + 333));
    const out = new Int16Array(FRAME_SAMPLES);
    const frames: Buffer[] = [];
    while (input.readFrame(out)) frames.push(Buffer.from(out.buffer.slice(0)));
    expect(frames).toHaveLength(5);
    expect(Buffer.concat(frames).equals(pcm)).toBe(true);
  });

  it('bounds its buffer by dropping the oldest audio', () => {
    const input = new PcmInput(undefined, 200);
    input.write(tone(440, 1000));
    expect(input.bufferedMs).toBe(200);
    expect(input.droppedSamples).toBe(48_000 - 9600);
  });

  it('waits to be primed again after running dry', () => {
    const input = new PcmInput(undefined, 500, 40);
    const out = new Int16Array(FRAME_SAMPLES);
    input.write(tone(440, 20));
    expect(input.readFrame(out)).toBe(false);
    input.write(tone(440, 20));
    expect(input.readFrame(out)).toBe(true);
    expect(input.readFrame(out)).toBe(true);
    expect(input.readFrame(out)).toBe(false);
    input.write(tone(440, 20));
    expect(input.readFrame(out)).toBe(false);
    input.write(tone(440, 20));
    expect(input.readFrame(out)).toBe(true);
  });

  it('resamples 44.1 kHz stereo to 48 kHz mono, keeping the pitch', () => {
    const input = new PcmInput({ rate: 44_100, channels: 2 }, 2000);
    input.write(tone(440, 1000, 44_100, 8000, 2));
    const out = new Int16Array(FRAME_SAMPLES);
    const all: Int16Array[] = [];
    while (input.readFrame(out)) all.push(out.slice());
    const samples = new Int16Array(all.length * FRAME_SAMPLES);
    all.forEach((f, i) => samples.set(f, i * FRAME_SAMPLES));
    expect(samples.length).toBeGreaterThan(0.95 * 48_000 - FRAME_SAMPLES);
    expect(dominantFrequency(samples)).toBe(440);
    input.close();
  });
});

describe('AudioMixer', () => {
  it('gives each speaker everyone but themself, and a listener everyone', () => {
    const { m, a, b, heardByA, heardByB, heardByL } = twoSpeakers();
    const toneA = new ToneSource(440);
    const toneB = new ToneSource(1000);
    for (let t = 0; t < 50; t++) {
      a.write(toneA.next(20));
      b.write(toneB.next(20));
      m.tick();
    }
    const aHeard = { pcm: heardByA.samples() };
    const bHeard = { pcm: heardByB.samples() };
    const l = { pcm: heardByL.samples() };
    expect(m.mixes).toBe(3);
    expect(powerAt(aHeard.pcm, 1000)).toBeGreaterThan(100 * powerAt(aHeard.pcm, 440));
    expect(powerAt(bHeard.pcm, 440)).toBeGreaterThan(100 * powerAt(bHeard.pcm, 1000));
    expect(powerAt(l.pcm, 440)).toBeGreaterThan(0.5 * powerAt(l.pcm, 1000));
    expect(powerAt(l.pcm, 1000)).toBeGreaterThan(0.5 * powerAt(l.pcm, 440));
    m.close();
  });

  it('encodes each distinct mix once however many hear it', () => {
    const m = mixer();
    const a = new PcmInput();
    m.addInput('a', a);
    const got: Uint8Array[][] = [[], [], []];
    for (const g of got) m.listen({ onFrame: (f) => g.push(f.opus()) });
    for (let t = 0; t < 10; t++) {
      a.write(tone(440, 20));
      m.tick();
    }
    expect(m.mixes).toBe(1);
    // The very same packet objects: encoded once, shared.
    for (let t = 0; t < 10; t++) expect(got[1]![t]).toBe(got[0]![t]);
    m.close();
  });

  it('turns loud sums down instead of wrapping around', () => {
    const m = mixer();
    const speakers = ['a', 'b', 'c'].map((id) => {
      const input = new PcmInput();
      m.addInput(id, input);
      return input;
    });
    const heard: Buffer[] = [];
    m.listen({ onFrame: (f) => heard.push(Buffer.from(f.pcm)) });
    for (let t = 0; t < 50; t++) {
      for (const s of speakers)
        s.write(tone(440, 20, 48_000, 30_000, 1, (2 * Math.PI * 440 * t * 960) / 48_000));
      m.tick();
    }
    const samples = samplesOf(Buffer.concat(heard));
    // In phase, the three sum to 90000: limited to full scale, still a clean 440 Hz.
    expect(Math.max(...samples)).toBeLessThanOrEqual(32767);
    expect(rms(samples.subarray(24_000))).toBeGreaterThan(15_000);
    expect(dominantFrequency(samples)).toBe(440);
    m.close();
  });

  it('sends silence to listeners of an empty room and forgets mixes nobody hears', () => {
    const m = mixer();
    const heard: Buffer[] = [];
    const sub = m.listen({ onFrame: (f) => heard.push(Buffer.from(f.pcm)) });
    m.tick();
    expect(heard[0]!.equals(Buffer.alloc(FRAME_BYTES))).toBe(true);
    sub.close();
    expect(m.idle).toBe(true);
    expect(m.mixes).toBe(0);
  });

  it('keeps a backlog of recent packets for late listeners', () => {
    const m = mixer(10);
    const a = new PcmInput();
    m.addInput('a', a);
    for (let t = 0; t < 30; t++) {
      a.write(tone(440, 20));
      m.tick();
    }
    const sub = m.listen({ onFrame: () => undefined });
    expect(sub.backlog()).toHaveLength(10);
    expect(sub.preSkip).toBe(312);
    m.close();
  });
});

describe('Opus, Ogg and WAV', () => {
  function oggOf(seconds: number, freq: number): Buffer {
    const encoder = createOpusEncoder();
    const writer = new OggOpusWriter(encoder.preSkip);
    const pcm = tone(freq, seconds * 1000);
    const parts = [writer.headers()];
    // A late-joiner style first page of many packets, then one page per packet.
    const packets: Uint8Array[] = [];
    for (let at = 0; at < pcm.length; at += FRAME_BYTES) {
      packets.push(encoder.encode(samplesOf(pcm.subarray(at, at + FRAME_BYTES))));
    }
    parts.push(writer.audio(packets.slice(0, 20), FRAME_SAMPLES));
    for (const p of packets.slice(20)) parts.push(writer.audio([p], FRAME_SAMPLES));
    return Buffer.concat(parts);
  }

  it('round-trips a tone through the codec interface', () => {
    const encoder = createOpusEncoder();
    const decoder = createOpusDecoder();
    const pcm = tone(440, 1000);
    const out: Int16Array[] = [];
    for (let at = 0; at < pcm.length; at += FRAME_BYTES) {
      out.push(decoder.decode(encoder.encode(samplesOf(pcm.subarray(at, at + FRAME_BYTES)))));
    }
    const all = new Int16Array(out.length * FRAME_SAMPLES);
    out.forEach((f, i) => all.set(f, i * FRAME_SAMPLES));
    expect(dominantFrequency(all)).toBe(440);
  });

  it.runIf(haveOpusinfo)('writes Ogg/Opus that opusinfo validates', async () => {
    const { text, complaints } = await opusinfo(oggOf(3, 440), 'tone.opus');
    expect(text).toContain('Pre-skip: 312');
    expect(text).toMatch(/Playback length: 0m:0?2\.99/);
    // A live stream never ends, so the only complaint allowed is the missing EOS page.
    expect(complaints).toEqual(LIVE_STREAM_COMPLAINTS);
  });

  it.runIf(haveFfmpeg)('writes Ogg/Opus that ffmpeg decodes to the tone', async () => {
    const samples = await ffmpegDecode(oggOf(2, 440), 'ogg');
    expect(samples.length).toBeGreaterThan(2 * 48_000 - 2 * FRAME_SAMPLES);
    expect(dominantFrequency(samples)).toBe(440);
  });

  it.runIf(haveFfmpeg)('writes an endless WAV header ffmpeg reads to the end', async () => {
    const samples = await ffmpegDecode(Buffer.concat([endlessWavHeader(), tone(440, 500)]), 'wav');
    expect(samples.length).toBe(24_000);
    expect(dominantFrequency(samples)).toBe(440);
    expect(endlessWavHeader().readUInt32LE(4)).toBe(0xffffffff);
  });
});

describe('AudioMixer listeners who speak', () => {
  it('share the full mix until they speak, then hear everyone but themself', () => {
    const m = mixer();
    const a = new PcmInput();
    m.addInput('a', a);
    const toneA = new ToneSource(440);
    const toneB = new ToneSource(1000);
    const heardByB = record(m, 'b');
    record(m);
    expect(m.mixes).toBe(1); // b is not speaking: one mix for both
    const b = new PcmInput();
    m.addInput('b', b);
    expect(m.mixes).toBe(2);
    for (let t = 0; t < 50; t++) {
      a.write(toneA.next(20));
      b.write(toneB.next(20));
      m.tick();
    }
    const heard = heardByB.samples();
    expect(powerAt(heard, 440)).toBeGreaterThan(100 * powerAt(heard, 1000));
    m.removeInput('b');
    expect(m.mixes).toBe(1);
    heardByB.sub.close();
    m.close();
  });
});

describe('AudioMixer with quiet speakers', () => {
  it('gives a speaker who is silent this tick the full mix, encoded once for all', () => {
    const { m, a, b, heardByA, heardByB, heardByL } = twoSpeakers();
    const toneA = new ToneSource(440);
    for (let t = 0; t < 20; t++) {
      a.write(toneA.next(20));
      b.write(Buffer.alloc(1920)); // b's microphone is silent
      m.tick();
    }
    // From the second tick (the first primes the jitter buffers).
    for (let t = 2; t < 20; t++) {
      expect(heardByB.packets[t]).toBe(heardByL.packets[t]);
      expect(heardByA.packets[t]).not.toBe(heardByL.packets[t]);
    }
    // a hears nothing of itself; b (and the listener) hear a.
    expect(rms(heardByA.samples())).toBeLessThan(1);
    expect(dominantFrequency(heardByB.samples())).toBe(440);
    m.close();
  });
});
