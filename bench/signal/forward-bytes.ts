// bench/signal/forward-bytes.ts: the CPU and heap allocation of what a Signal connection
// does with a received frame until its forwarded frame is in the target's write buffer
// (#17.1 session 13), for each way, alternating in one process so a shared machine's
// load falls on both alike:
//   text:  decode the Buffer (toString), JSON.parse and check it (parseInbound), build
//          the forwarded string (forwardedFrame), encode it into the frames (textFrames);
//   bytes: find the target on the bytes (frameTarget), copy them after the originator
//          (forwardedBytes), copy that into the frames (textFrames);
//   parsed: decode and parseInbound as text, but forward the frame's bytes (forwardedBytes):
//          what validating with V8's parser and skipping only the string round trip gives.
// Frames: the socket bench's 200-byte frame, an ICE candidate and a 3 KiB SDP offer. CPU
// per message from process.cpuUsage; heap bytes per message from the used heap before and
// after a batch run inside a young generation large enough that no scavenge happens.
//
//   node --max-semi-space-size=256 --min-semi-space-size=256 --expose-gc --import tsx \
//     bench/signal/forward-bytes.ts [--messages 1000000] [--rounds 5] [--batch 8]
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import {
  forwardedBytes,
  forwardedFrame,
  hasExactlyWireKeys,
  parseInbound,
  type InboundMessage,
} from '../../src/api/signal/signal-wire.js';
import { frameTarget } from '../../src/api/signal/frame-target.js';
import { textFrames } from '../../src/api/signal/text-frames.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '5' },
    batch: { type: 'string', default: '8' },
  },
});
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const BATCH = Number(values.batch);
const USER = 'user-4711';

function sdp(): string {
  const lines = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1'];
  for (const [kind, pts] of [
    ['audio', '111 63 9 0 8 13 110 126'],
    ['video', '96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 99 100 101'],
  ] as const) {
    lines.push(`m=${kind} 9 UDP/TLS/RTP/SAVPF ${pts}`, 'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0');
    lines.push('a=ice-ufrag:EsAw', 'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1', 'a=ice-options:trickle');
    lines.push(
      'a=fingerprint:sha-256 ' +
        Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0'))
          .join(':')
          .toUpperCase(),
    );
    lines.push('a=setup:actpass', `a=mid:${kind === 'audio' ? 0 : 1}`, 'a=sendrecv', 'a=rtcp-mux');
    for (const pt of pts.split(' '))
      lines.push(
        `a=rtpmap:${pt} codec${pt}/90000`,
        `a=rtcp-fb:${pt} nack`,
        `a=fmtp:${pt} level-asymmetry-allowed=1`,
      );
  }
  return lines.join('\r\n') + '\r\n';
}

const kinds: Record<string, (i: number) => string> = {
  bench200: (i) => {
    const head = `{"target":"u${i % 200}","type":"t","payload":{"t":${(i * 1.001).toFixed(3).padStart(14, ' ')},"pad":"`;
    return head + 'x'.repeat(200 - head.length - 3) + '"}}';
  },
  candidate: (i) =>
    JSON.stringify({
      target: `user-${i % 200}`,
      type: 'CANDIDATE',
      payload: {
        candidate: `candidate:842163049 1 udp 1677729535 203.0.113.${i % 250} ${50000 + i} typ srflx raddr 192.168.1.10 rport ${50000 + i} generation 0 ufrag EsAw network-cost 999`,
        sdpMid: '0',
        sdpMLineIndex: 0,
      },
    }),
  sdp3k: (i) =>
    JSON.stringify({
      target: `user-${i % 200}`,
      type: 'OFFER',
      payload: { type: 'offer', sdp: sdp().slice(0, 2900 + (i % 64)) },
    }),
};

let sink = 0;

function textWay(frames: Buffer[], n: number): void {
  const batch: string[] = [];
  for (let i = 0; i < n; i++) {
    const data = frames[i & 1023]!;
    const text = data.toString('utf8');
    const m = parseInbound(text) as InboundMessage;
    sink += m.target.length;
    batch.push(forwardedFrame(USER, m, text));
    if (batch.length === BATCH) {
      sink += textFrames(batch).length;
      batch.length = 0;
    }
  }
}

function bytesWay(frames: Buffer[], n: number): void {
  const batch: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const data = frames[i & 1023]!;
    const target = frameTarget(data)!;
    sink += target.length;
    batch.push(forwardedBytes(USER, data));
    if (batch.length === BATCH) {
      sink += textFrames(batch).length;
      batch.length = 0;
    }
  }
}

/** Parsed as before, but the frame's bytes forwarded (no forwarded string, no encoding). */
function parsedWay(frames: Buffer[], n: number): void {
  const batch: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const data = frames[i & 1023]!;
    const m = parseInbound(data.toString('utf8')) as InboundMessage;
    if (!hasExactlyWireKeys(m)) throw new Error('not a wire frame');
    sink += m.target.length;
    batch.push(forwardedBytes(USER, data));
    if (batch.length === BATCH) {
      sink += textFrames(batch).length;
      batch.length = 0;
    }
  }
}

const ways = { text: textWay, bytes: bytesWay, parsed: parsedWay };

function cpuNs(way: (f: Buffer[], n: number) => void, frames: Buffer[]): number {
  const start = process.cpuUsage();
  way(frames, MESSAGES);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / MESSAGES;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Heap bytes per message, over a run short enough to fit the young generation. */
function heapBytes(way: (f: Buffer[], n: number) => void, frames: Buffer[]): number {
  const n = 20_000;
  gc?.();
  const before = getHeapStatistics().used_heap_size;
  way(frames, n);
  return (getHeapStatistics().used_heap_size - before) / n;
}

const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out: Record<string, unknown> = {
  node: process.version,
  messages: MESSAGES,
  rounds: ROUNDS,
  batch: BATCH,
};
for (const [kind, make] of Object.entries(kinds)) {
  const frames = Array.from({ length: 1024 }, (_, i) => Buffer.from(make(i)));
  for (const f of frames) {
    // Both ways must give the same bytes, or the comparison means nothing.
    const text = f.toString();
    const expected = Buffer.from(forwardedFrame(USER, parseInbound(text) as InboundMessage, text));
    if (!forwardedBytes(USER, f).equals(expected) || frameTarget(f) === undefined)
      throw new Error(`${kind}: ways differ`);
  }
  const ns: Record<string, number[]> = { text: [], bytes: [], parsed: [] };
  const heap: Record<string, number[]> = { text: [], bytes: [], parsed: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, way] of Object.entries(ways)) {
      ns[name]!.push(cpuNs(way, frames));
      heap[name]!.push(heapBytes(way, frames));
    }
  }
  out[kind] = {
    frameBytes: Math.round(frames.reduce((n, f) => n + f.length, 0) / frames.length),
    nsPerMessage: Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, v.map(Math.round)])),
    medianNs: Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, Math.round(median(v))])),
    heapBytesPerMessage: Object.fromEntries(Object.entries(heap).map(([k, v]) => [k, Math.round(median(v))])),
  };
}
out.sink = sink > 0;
console.log(JSON.stringify(out, null, 2));
