// bench/signal/read-path.ts: the server's CPU and young-generation allocation to read a
// client's Signal messages off one WebSocket over real loopback TCP, for each way of
// reading them (#17.1, session 13): through ws's Receiver (what every socket did before)
// or directly (DirectTextFrameReader: whole text frames emitted as views of the read).
// A child process writes `--batch` masked text frames in one write and waits for the
// server's one-byte answer (written when the batch's last message arrives) before the
// next, so each read carries one batch; this process measures its own CPU
// (process.cpuUsage) and counts its scavenges (young generation fixed at 2 x --semi-mib,
// so a scavenge is that many MiB allocated). The variants alternate on the same socket in
// rounds, so a shared machine's load falls on both alike.
//
//   node --max-semi-space-size=16 --min-semi-space-size=16 --import tsx bench/signal/read-path.ts \
//     [--batch 8] [--messages 200000] [--rounds 4] [--bytes 220]
import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { DirectTextFrameReader } from '../../src/api/signal/direct-text-frames.js';
import {
  alternatingRounds,
  costPerMessage,
  roundOptions,
  scavengeCounter,
  type RoundCost,
} from './alternating-rounds.js';

const { BATCH, MESSAGES, ROUNDS, BYTES, SEMI_MIB } = roundOptions(200000);

/** 64 different messages as a client sends them (a target, a type, a payload), masked. */
function maskedFrames(): Buffer[] {
  return Array.from({ length: 64 }, (_, i) => {
    const head = `{"target":"u${i}","type":"candidate","payload":{"t":${(i * 1.001).toFixed(3)},"pad":"`;
    const text = Buffer.from(`${head}${'x'.repeat(Math.max(0, BYTES - head.length - 3))}"}}`);
    const size = text.length;
    const header = size < 126 ? 6 : 8;
    const frame = Buffer.alloc(header + size);
    frame[0] = 0x81;
    if (size < 126) frame[1] = 0x80 | size;
    else {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(size, 2);
    }
    const mask = randomBytes(4);
    mask.copy(frame, header - 4);
    for (let k = 0; k < size; k++) frame[header + k] = text[k]! ^ mask[k & 3]!;
    return frame;
  });
}

if (process.argv[2] === '--writer') {
  // The client: upgrade by hand, then a batch of frames per answer from the server.
  const { connect } = await import('node:net');
  const frames = maskedFrames();
  const batches = Array.from({ length: 64 }, (_, b) =>
    Buffer.concat(Array.from({ length: BATCH }, (_, i) => frames[(b * BATCH + i) & 63]!)),
  );
  let sent = 0;
  let upgraded = false;
  const s = connect(Number(process.argv[3]), '127.0.0.1', () =>
    s.write(
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    ),
  );
  s.setNoDelay(true);
  // The handshake's answer, then one byte an answered batch: the next batch either way.
  s.on('data', () => {
    if (!upgraded) {
      upgraded = true;
      return;
    }
    s.write(batches[sent++ & 63]!);
  });
  process.on('message', () => s.write(batches[sent++ & 63]!));
  s.on('error', () => process.exit(0));
  s.on('close', () => process.exit(0));
} else {
  const scavenges = scavengeCounter();

  // As the Signal surface makes its server: its max payload, no compression.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
  const server = createServer();
  const accepted = new Promise<{ ws: WebSocket; tcp: Socket }>((resolve) =>
    server.on('upgrade', (req: IncomingMessage, tcp: Duplex, head: Buffer) =>
      wss.handleUpgrade(req, tcp, head, (ws) => resolve({ ws, tcp: tcp as Socket })),
    ),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const writer = fork(fileUrlPath(), ['--writer', String(port), ...process.argv.slice(2)], {
    execArgv: ['--import', 'tsx'],
  });
  const { ws, tcp } = await accepted;
  const receiver = (ws as unknown as { _receiver: object })._receiver;
  const wsPrototype = Object.getPrototypeOf(receiver) as object;
  if (!new DirectTextFrameReader().install(ws)) throw new Error('the direct read did not fit this socket');
  const directPrototype = Object.getPrototypeOf(receiver) as object;

  const ANSWER = Buffer.from([0x81, 0x00]); // an empty text frame; the writer only counts reads
  let received = 0;
  let bytes = 0;
  let done: (() => void) | undefined;
  let goal = 0;
  // What the connection's listener would start with: the message, its length.
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) throw new Error('binary');
    bytes += data.length;
    if (++received % BATCH === 0) {
      if (received >= goal) done?.();
      else tcp.write(ANSWER);
    }
  });

  const variants: Record<string, object> = { ws: wsPrototype, direct: directPrototype };

  const run = (proto: object): Promise<RoundCost> => {
    Object.setPrototypeOf(receiver, proto);
    goal = received + MESSAGES;
    const finished = new Promise<void>((r) => (done = r));
    return costPerMessage(MESSAGES, SEMI_MIB, scavenges, async () => {
      writer.send('go');
      await finished;
    });
  };

  const results = await alternatingRounds(variants, ROUNDS, run);
  console.log(
    JSON.stringify(
      {
        node: process.version,
        batch: BATCH,
        messages: MESSAGES,
        bytes: maskedFrames()[0]!.length,
        received: bytes,
        results,
      },
      null,
      2,
    ),
  );
  writer.kill();
  ws.terminate();
  server.close();
}

function fileUrlPath(): string {
  return new URL(import.meta.url).pathname;
}
