// bench/signal/write-path.ts: the server's CPU and young-generation allocation to write a
// turn's Signal messages to one WebSocket over real loopback TCP, for each way of writing
// them (#17.1, session 12): through ws (`socket.send` per message into the corked TCP
// socket, what the connection did before) or as one Buffer of frames (textFrames, one
// socket write). A child process reads and discards the bytes; this process measures its
// own CPU (process.cpuUsage) and counts its scavenges (young generation fixed at 2 x
// --semi-mib, so a scavenge is that many MiB allocated). The variants alternate in
// rounds, so a shared machine's load falls on both alike.
//
//   node --max-semi-space-size=16 --min-semi-space-size=16 --import tsx bench/signal/write-path.ts \
//     [--batch 8] [--messages 400000] [--rounds 4] [--bytes 220]
import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { textFrames } from '../../src/api/signal/text-frames.js';
import {
  alternatingRounds,
  costPerMessage,
  roundOptions,
  scavengeCounter,
  type RoundCost,
} from './alternating-rounds.js';

const { BATCH, MESSAGES, ROUNDS, BYTES, SEMI_MIB } = roundOptions(400000);

if (process.argv[2] === '--reader') {
  // The client: upgrade by hand, then read and discard. Masking applies to what a client
  // sends; it sends nothing after the request.
  const { connect } = await import('node:net');
  const s = connect(Number(process.argv[3]), '127.0.0.1', () =>
    s.write(
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    ),
  );
  s.on('data', () => {});
  s.on('error', () => process.exit(0));
  s.on('close', () => process.exit(0));
} else {
  const scavenges = scavengeCounter();

  const wss = new WebSocketServer({ noServer: true });
  const server = createServer();
  const accepted = new Promise<{ ws: WebSocket; tcp: Socket }>((resolve) =>
    server.on('upgrade', (req: IncomingMessage, tcp: Duplex, head: Buffer) =>
      wss.handleUpgrade(req, tcp, head, (ws) => resolve({ ws, tcp: tcp as Socket })),
    ),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const reader = fork(fileUrlPath(), ['--reader', String(port)], { execArgv: ['--import', 'tsx'] });
  const { ws, tcp } = await accepted;

  // A forwarded form as the connection makes it: the originator put before the sender's
  // text (a cons string, flattened when written).
  const texts = Array.from({ length: 64 }, (_, i) => {
    const head = `"target":"u${i}","type":"t","payload":{"t":${(i * 1.001).toFixed(3)},"pad":"`;
    return `{${head}${'x'.repeat(Math.max(0, BYTES - head.length - 20))}"}}`;
  });
  const message = (i: number): string =>
    `{"originator":${JSON.stringify(`u${i & 7}`)},${texts[i & 63]!.slice(1)}`;

  const TEXT = { binary: false };
  const variants: Record<string, (ms: string[]) => void> = {
    ws(ms) {
      tcp.cork();
      for (const m of ms) ws.send(m, TEXT);
      tcp.uncork();
    },
    frames(ms) {
      tcp.write(textFrames(ms));
    },
  };

  const run = (write: (ms: string[]) => void): Promise<RoundCost> =>
    costPerMessage(MESSAGES, SEMI_MIB, scavenges, async () => {
      let sent = 0;
      while (sent < MESSAGES) {
        const ms: string[] = [];
        for (let i = 0; i < BATCH; i++) ms.push(message(sent + i));
        write(ms);
        sent += BATCH;
        // One turn of the event loop per batch, as the connection flushes once a turn.
        if (tcp.writableLength > 1 << 18) await once(tcp, 'drain');
        else await new Promise((r) => setImmediate(r));
      }
      if (tcp.writableLength > 0) await once(tcp, 'drain');
    });

  const results = await alternatingRounds(variants, ROUNDS, run);
  console.log(
    JSON.stringify(
      { node: process.version, batch: BATCH, messages: MESSAGES, bytes: message(0).length, results },
      null,
      2,
    ),
  );
  reader.kill();
  ws.terminate();
  server.close();
}

function fileUrlPath(): string {
  return new URL(import.meta.url).pathname;
}
