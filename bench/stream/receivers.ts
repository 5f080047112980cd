// A bench worker: holds N stream receivers on raw TCP sockets (a WebSocket handshake,
// then only counting bytes: the cheapest possible reader, so the client side costs as
// little CPU as it can on a 2-core box). Reports totals to the parent on request.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

const [, , host, portText, path, countText] = process.argv;
const port = Number(portText);
const count = Number(countText);
const sockets: Socket[] = [];
let bytes = 0;
let open = 0;
let closed = 0;

function openOne(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => {
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let handshaken = false;
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => {
      if (!handshaken) {
        const text = d.toString('latin1');
        if (!text.startsWith('HTTP/1.1 101')) {
          reject(new Error(`refused: ${text.split('\r\n')[0]}`));
          s.destroy();
          return;
        }
        handshaken = true;
        open++;
        resolve();
        const end = text.indexOf('\r\n\r\n');
        bytes += d.length - (end + 4);
        return;
      }
      bytes += d.length;
    });
    s.on('close', () => {
      if (handshaken) closed++;
    });
    s.on('error', () => undefined);
    sockets.push(s);
  });
}

for (let i = 0; i < count; i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, count - i) }, () => openOne()));
}
process.send!({ type: 'ready', open });
process.on('message', (m: { type: string }) => {
  if (m.type === 'report') process.send!({ type: 'report', bytes, open, closed });
  if (m.type === 'exit') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
