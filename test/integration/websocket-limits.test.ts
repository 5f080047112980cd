import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawWebSocket } from '../fixtures/raw-websocket.js';
import { signalCookie } from '../fixtures/signal-user.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser } from '../fixtures/voip-client.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

interface Line {
  level: number;
  msg: string;
  suppressed?: number;
  code?: string;
}
const logged: Line[] = [];
let t: TestServer;
let port: number;

beforeAll(async () => {
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void logged.push(JSON.parse(line) as Line) },
  );
  t = await startTestServer({}, { logger });
  port = Number(new URL(t.url).port);
});
afterAll(() => t.close());

const cookieOf = (name: string): Promise<string> => signalCookie(t.url, name);

const beepClaim = (userid: string) => ({ 'X-User-Claim': JSON.stringify({ userid, clientid: 'web' }) });

/** Path and headers of an upgrade each WebSocket surface accepts (VOIP tickets are single-use). */
async function surfaces(): Promise<
  Array<{ name: string; upgrade: () => Promise<{ path: string; headers: Record<string, string> }> }>
> {
  const voip = new KeyUser(t.url);
  const cookie = await cookieOf(`raw-${Date.now()}`);
  return [
    { name: 'signal', upgrade: async () => ({ path: '/v1/connect', headers: { cookie } }) },
    { name: 'stream', upgrade: async () => ({ path: '/rawchannel/key/receive', headers: {} }) },
    {
      name: 'voip',
      upgrade: async () => ({
        path: `/joinRoom?${await voip.mediaQuery({ roomID: 'raw-room' })}`,
        headers: {},
      }),
    },
    { name: 'beep', upgrade: async () => ({ path: '/connect', headers: beepClaim('raw-alice') }) },
  ];
}

describe('each surface its own WebSocket message limit (#11.5)', () => {
  it('refuses a 15 MiB frame to Signal from its header, with 1009, before the payload is sent', async () => {
    const ws = await RawWebSocket.open(port, '/v1/connect', { cookie: await cookieOf('huge-alice') });
    expect(ws.status).toBe(101);
    // The header announces 15 MiB; only 128 KiB of it ever comes. A server that buffers
    // up to Stream's 16 MiB before checking would wait for the rest and say nothing.
    const announced = 15 * 1024 * 1024;
    const part = Buffer.alloc(128 * 1024, 0x61);
    const frame = RawWebSocket.frame(0x81, part, { length: announced });
    ws.write(frame);
    expect(await ws.closeFrame()).toEqual({ code: 1009, reason: '' });
    ws.destroy();
    // The server goes on serving Signal.
    const s = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie: await cookieOf('after-huge') });
    s.close();
  });

  it('closes a 5 MiB SDP to Beep with 1009 instead of parsing it', async () => {
    const s = await TestSocket.open(`${t.wsUrl}/connect`, beepClaim('big-sdp'));
    const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=x-pad:${'p'.repeat(5 * 1024 * 1024)}\r\n`;
    s.send(sdp);
    expect((await s.closed).code).toBe(1009);
    expect(s.messages).toEqual([]);
  });

  it("still lets Stream publishers send messages far above the other surfaces' limits", async () => {
    const pub = await TestSocket.open(`${t.wsUrl}/bigmsg/key/publish`);
    const rx = await TestSocket.open(`${t.wsUrl}/bigmsg/key/receive`);
    pub.ws.send(Buffer.alloc(1024 * 1024, 7));
    await rx.binaryCount(1, 10_000);
    expect(rx.binaries[0]!.length).toBe(1024 * 1024);
    pub.close();
    rx.close();
  });
});

describe("WebSocket protocol errors are the client's: closed with the right code, logged at warn, throttled (#11.8)", () => {
  const bad: Array<{ what: string; frame: () => Buffer; code: number }> = [
    {
      what: 'an unmasked frame',
      frame: () => RawWebSocket.frame(0x81, Buffer.from('hi'), { mask: false }),
      code: 1002,
    },
    { what: 'RSV bits set', frame: () => RawWebSocket.frame(0xf1, Buffer.from('hi')), code: 1002 },
    { what: 'a reserved opcode', frame: () => RawWebSocket.frame(0x83, Buffer.from('hi')), code: 1002 },
    {
      what: 'invalid UTF-8 in a text frame',
      frame: () => RawWebSocket.frame(0x81, Buffer.from([0xc3, 0x28, 0xff])),
      code: 1007,
    },
  ];

  it("closes each surface's socket with 1002/1007 and logs nothing at error level", async () => {
    const from = logged.length;
    for (const s of await surfaces()) {
      for (const b of bad) {
        const { path, headers } = await s.upgrade();
        const ws = await RawWebSocket.open(port, path, headers);
        expect([s.name, ws.status]).toEqual([s.name, 101]);
        ws.write(b.frame());
        const close = await ws.closeFrame();
        expect([s.name, b.what, close?.code]).toEqual([s.name, b.what, b.code]);
        ws.destroy();
      }
    }
    const lines = logged.slice(from);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.msg === 'websocket protocol error').length).toBeGreaterThan(0);
    const health = await fetch(`${t.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('writes a bounded number of lines for a flood of 500 bad connections', async () => {
    const from = logged.length;
    const cookie = await cookieOf('flooder');
    let n = 0;
    const worker = async () => {
      while (n < 500) {
        n++;
        const ws = await RawWebSocket.open(port, '/v1/connect', { cookie });
        ws.write(RawWebSocket.frame(0x81, Buffer.from([0xff, 0xfe])));
        await ws.closeFrame();
        ws.destroy();
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    await eventually(() => t.server.tracker.size === 0, 10_000, 'the flood sockets to close');
    const lines = logged.slice(from).filter((l) => l.msg === 'websocket protocol error');
    expect(logged.slice(from).filter((l) => l.level >= 50)).toEqual([]);
    // 10 lines a second at most: far fewer than one per connection, and the rest counted.
    expect(lines.length).toBeLessThan(250);
    expect(lines.some((l) => (l.suppressed ?? 0) > 0)).toBe(true);
    const s = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
    s.close();
  });
});
