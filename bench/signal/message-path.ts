// bench/signal/message-path.ts: the CPU of a forwarded message's own JavaScript, in one
// process, without sockets: a frame as ws hands it over (a Buffer) decoded, parsed and
// checked (parseInbound), then its forwarded form built, either from the sender's text
// (what a frame with exactly target, type and payload takes) or serialised again (every
// other frame, and every frame before #17.1's change). CPU time, not wall time, so a
// shared machine's load changes the figures less than the socket bench's.
//
//   npx tsx bench/signal/message-path.ts [--bytes 200] [--messages 2000000] [--rounds 5]
import { parseArgs } from 'node:util';
import { forwardedFrame, parseInbound, type InboundMessage } from '../../src/api/signal/signal-wire.js';

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: '200' },
    messages: { type: 'string', default: '2000000' },
    rounds: { type: 'string', default: '5' },
  },
});
const BYTES = Number(values.bytes);
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);

/** The socket bench's frame (bench/signal/run.ts): a send time and padding to BYTES. */
function frame(i: number): Buffer {
  const head = `{"target":"u${i % 200}","type":"t","payload":{"t":${(i * 1.001).toFixed(3).padStart(14, ' ')},"pad":"`;
  const tail = '"}}';
  return Buffer.from(head + 'x'.repeat(Math.max(0, BYTES - head.length - tail.length)) + tail);
}

const frames = Array.from({ length: 1024 }, (_, i) => frame(i));
let sink = 0;

/** CPU nanoseconds per message of decode + parse + forwarded form. */
function run(verbatim: boolean): number {
  const start = process.cpuUsage();
  for (let i = 0; i < MESSAGES; i++) {
    const text = frames[i & 1023]!.toString('utf8');
    const m = parseInbound(text) as InboundMessage;
    const out = forwardedFrame('u1', m, verbatim ? text : undefined);
    // Flattened, as ws does when it writes the string into its frame.
    sink += Buffer.byteLength(out);
  }
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / MESSAGES;
}

const results: { verbatim: number[]; serialised: number[] } = { verbatim: [], serialised: [] };
for (let r = 0; r < ROUNDS; r++) {
  results.serialised.push(run(false));
  results.verbatim.push(run(true));
}
const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  JSON.stringify(
    {
      node: process.version,
      frameBytes: frames[0]!.length,
      messages: MESSAGES,
      rounds: ROUNDS,
      nsPerMessageSerialised: Math.round(median(results.serialised)),
      nsPerMessageVerbatim: Math.round(median(results.verbatim)),
      sink: sink > 0,
    },
    null,
    2,
  ),
);
