import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../fixtures/audio.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';

interface Line {
  level: number;
  msg: string;
  suppressed?: number;
}

/** A raw TCP client: what it received, and whether the server closed it. */
class RawClient {
  received = '';
  closed = false;
  readonly socket: Socket;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => (this.received += d.toString('latin1')));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => (this.closed = true));
  }
  connected(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.socket.connecting) resolve();
      else this.socket.once('connect', () => resolve());
    });
  }
}

/** Sends `body` one byte at a time, every `everyMs`, until the server closes the socket. */
function trickle(c: RawClient, head: string, body: string, everyMs: number): () => void {
  c.socket.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (c.closed || i >= body.length) return clearInterval(timer);
    c.socket.write(body[i++]!);
  }, everyMs);
  return () => clearInterval(timer);
}

describe('VOIP multipart forms with file parts (#11.4)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  const multipart = (fields: Record<string, string>, fileBytes: number) => {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fields)) fd.append(k, v);
    if (fileBytes > 0) fd.append('upload', new Blob([Buffer.alloc(fileBytes, 0x61)]), 'a.bin');
    return fd;
  };

  for (const size of [20_000, 100_000]) {
    it(`answers a form with a ${size / 1000} KB file part: the fields are read, the file dropped`, async () => {
      const signal = AbortSignal.timeout(15_000);
      const members = await fetch(`${t.url}/listMembers`, {
        method: 'POST',
        body: multipart({ roomID: 'no-such-room' }, size),
        signal,
      });
      expect([members.status, await members.text()]).toEqual([404, 'room not found\n']);
      const call = await fetch(`${t.url}/newCall`, {
        method: 'POST',
        body: multipart({ Destination: 'x' }, size),
        signal,
      });
      expect([call.status, await call.text()]).toEqual([403, 'bad PKey\n']);
    });
  }

  it('refuses a form with too many parts or too long a field with 413, at once', async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 70; i++) many[`f${i}`] = 'v';
    const signal = AbortSignal.timeout(15_000);
    const parts = await fetch(`${t.url}/listMembers`, { method: 'POST', body: multipart(many, 0), signal });
    expect([parts.status, await parts.text()]).toEqual([413, 'too many form fields\n']);
    // The rest of a refused form within the limit is read and dropped, and the connection
    // kept, so a client still sending gets this answer rather than a broken pipe.
    expect(parts.headers.get('connection')).not.toBe('close');
    const files = new FormData();
    for (let i = 0; i < 12; i++) files.append(`u${i}`, new Blob([Buffer.alloc(100_000)]), 'a.bin');
    // Sent with node:http, which hands over the answer even when the server stops reading
    // before the body is all written (Node 24's fetch then reports only its EPIPE).
    expect(await statusOfPost(`${t.url}/listMembers`, files)).toBe(413);
    const long = await fetch(`${t.url}/listMembers`, {
      method: 'POST',
      body: multipart({ roomID: 'x'.repeat(70 * 1024) }, 0),
      signal,
    });
    expect(long.status).toBe(413);
    const ok = await fetch(`${t.url}/listMembers`, {
      method: 'POST',
      body: multipart({ roomID: 'nope' }, 0),
    });
    expect(ok.status).toBe(404);
  });
});

describe('a deadline for receiving each request, but not for audio uploads (#11.4)', () => {
  let t: TestServer;
  let port: number;
  beforeAll(async () => {
    t = await startTestServer({ http: { requestTimeoutSeconds: 1 }, voip: { uploadIdleSeconds: 1 } });
    port = Number(new URL(t.url).port);
  });
  afterAll(() => t.close());

  it('cuts off a slow body to a VOIP form route with 408 and closes the connection', async () => {
    const c = new RawClient(port);
    const stop = trickle(
      c,
      'POST /newCall HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n',
      'Destination='.padEnd(200, 'a'),
      300,
    );
    await eventually(() => c.closed, 15_000, 'the server to close the slow request');
    stop();
    expect(c.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(c.received.toLowerCase()).toContain('connection: close');
  });

  it("cuts off a slow JSON body to Signal (the seed's 400 INVALID) and one to no route (Chorus's 408)", async () => {
    const c = new RawClient(port);
    const stop = trickle(
      c,
      'POST /v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n',
      '{"username":"'.padEnd(100, 'a'),
      300,
    );
    await eventually(() => c.closed, 15_000, 'the server to close the slow request');
    stop();
    expect(c.received).toMatch(/^HTTP\/1\.1 400 /);
    expect(c.received).toContain('{"status":"INVALID","message":"invalid body"}');
    // Unmatched routes have the Chorus error body.
    const d = new RawClient(port);
    const stopD = trickle(
      d,
      'POST /no/such/route/here HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n',
      'a'.repeat(100),
      300,
    );
    await eventually(() => d.closed, 15_000, 'the server to close the slow request');
    stopD();
    expect(d.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(d.received).toContain('{"error":{"code":"timeout"');
  });

  it('lets an audio upload paced in real time go on past the deadline, and closes an idle one', async () => {
    const user = new KeyUser(t.url);
    const tone = new ToneSource(440);
    const status = await new Promise<number>((resolve, reject) => {
      void user.mediaQuery({ roomID: 'paced-room' }).then((q) => {
        const req = httpRequest(`${t.url}/upRoom?${q}`, { method: 'POST' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        // 2.5 s of audio, 20 ms at a time, in real time: longer than the 1 s deadline.
        const start = Date.now();
        let sent = 0;
        const next = () => {
          if (sent >= 2500) return req.end();
          req.write(tone.next(20));
          sent += 20;
          setTimeout(next, Math.max(0, start + sent - Date.now()));
        };
        next();
      });
    });
    expect(status).toBe(200);

    // The same upload going quiet without ending is closed by the idle timeout.
    const q = await user.mediaQuery({ roomID: 'idle-room' });
    let closed = false;
    const req = httpRequest(`${t.url}/upRoom?${q}`, { method: 'POST' }, (res) => res.resume());
    req.on('error', () => (closed = true));
    req.on('close', () => (closed = true));
    req.write(tone.next(100));
    await eventually(() => closed, 15_000, 'the idle upload to be closed');
    const health = await fetch(`${t.url}/healthz`);
    expect(health.status).toBe(200);
  });
});

describe('a per-IP cap on open TCP connections (#11.4)', () => {
  let t: TestServer;
  let port: number;
  const logged: Line[] = [];
  beforeAll(async () => {
    const logger = pino(
      { level: 'debug' },
      { write: (l: string) => void logged.push(JSON.parse(l) as Line) },
    );
    t = await startTestServer({ http: { maxConnectionsPerIp: 20 } }, { logger });
    port = Number(new URL(t.url).port);
  });
  afterAll(() => t.close());

  it('closes connections over the cap at once, logs them throttled, and accepts again once some close', async () => {
    const held: RawClient[] = [];
    for (let i = 0; i < 20; i++) held.push(new RawClient(port));
    await Promise.all(held.map((c) => c.connected()));
    // The server has taken them all before the extra ones arrive.
    await eventually(
      () =>
        new Promise<boolean>((resolve) => t.server.app.server.getConnections((_e, n) => resolve(n >= 20))),
      10_000,
      'the 20 connections to be accepted',
    );
    const extra: RawClient[] = [];
    for (let i = 0; i < 200; i++) extra.push(new RawClient(port));
    await eventually(() => extra.every((c) => c.closed), 15_000, 'the connections over the cap to be closed');
    expect(held.filter((c) => c.closed)).toEqual([]);
    const refusals = logged.filter((l) => l.msg.startsWith('connection refused'));
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.length).toBeLessThan(100);
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);

    for (const c of held.splice(0, 5)) c.socket.destroy();
    await eventually(
      async () => {
        try {
          return (await fetch(`${t.url}/healthz`)).status === 200;
        } catch {
          return false;
        }
      },
      10_000,
      'a new connection to be served',
    );
    for (const c of held) c.socket.destroy();
  });
});

/** The status of a POST of `form`, read as soon as the answer comes, whatever happens to the upload. */
async function statusOfPost(url: string, form: FormData): Promise<number> {
  const req = new Request(url, { method: 'POST', body: form });
  const body = Buffer.from(await req.arrayBuffer());
  return new Promise<number>((resolve, reject) => {
    const r = httpRequest(
      url,
      {
        method: 'POST',
        headers: { 'content-type': req.headers.get('content-type')!, 'content-length': body.length },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    // A failed upload may still be followed by the answer: give up only once the request
    // has closed without one (a settled promise ignores the later reject).
    r.on('error', () => undefined);
    r.on('close', () => reject(new Error('closed without an answer')));
    r.setTimeout(15_000, () => r.destroy(new Error('no answer within 15 s')));
    r.end(body);
  });
}
