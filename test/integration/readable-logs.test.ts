import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser } from '../fixtures/voip-client.js';
import { eventually, TestSocket } from '../fixtures/ws-client.js';

type Line = Record<string, unknown> & { level: number; msg: string };
const INFO = 30;

/** What the server writes at its default level (info), as JSON lines, as `npm start` does. */
const lines: Line[] = [];
let t: TestServer;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  // The default: one request line each, LOG_REQUESTS=YES, level info.
  t = await startTestServer({ log: { requests: true } }, { logger: pino({ level: 'info' }, sink) });
});
afterAll(async () => {
  await t?.close();
});

const requestLines = (url: string) => lines.filter((l) => l.msg === 'request' && l.url === url);

describe('logs a person can read', () => {
  it('keeps requests answered 2xx out of the info log, and logs failed ones', async () => {
    for (let i = 0; i < 5; i++) expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/no-such-page`)).status).toBe(404);
    await eventually(() => requestLines('/no-such-page').length === 1, 10_000, 'the 404 to be logged');
    expect(requestLines('/no-such-page')[0]).toMatchObject({ level: INFO, status: 404, method: 'GET' });
    expect(requestLines('/healthz')).toEqual([]);
  });

  it('logs a room opening, someone joining and leaving, at info with ids', async () => {
    const alice = new KeyUser(t.url);
    const room = 'log-readers';
    const up = await alice.uploadSocket('/upRoom', { roomID: room });
    const joined = () => lines.find((l) => l.msg === 'joined' && l.participant === alice.id);
    await eventually(() => joined() !== undefined, 10_000, 'the join to be logged');
    const j = joined()!;
    expect(j).toMatchObject({ level: INFO, kind: 'group', participant: alice.id });
    expect(typeof j.room).toBe('string');
    expect(lines.find((l) => l.msg === 'room opened' && l.room === j.room)).toMatchObject({
      level: INFO,
      kind: 'group',
    });
    up.close();
    await eventually(
      () => lines.some((l) => l.msg === 'left' && l.participant === alice.id && l.room === j.room),
      10_000,
      'the leave to be logged',
    );
    await eventually(
      () => lines.some((l) => l.msg === 'room closed' && l.room === j.room),
      10_000,
      'the empty room to close',
    );
  });

  it('logs a Signal user connecting and leaving, at info with the name', async () => {
    const reg = await fetch(`${t.url}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'log-reader' }),
    });
    const cookie = (reg.headers.getSetCookie()[0] ?? '').split(';')[0]!;
    const ws = await TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
    await eventually(
      () => lines.some((l) => l.msg === 'signal connected' && l.user === 'log-reader' && l.level === INFO),
      10_000,
      'the connect to be logged',
    );
    ws.close();
    await eventually(
      () => lines.some((l) => l.msg === 'signal connection closed' && l.user === 'log-reader'),
      10_000,
      'the leave to be logged',
    );
  });

  it('logs a live stream starting and stopping, at info with the channel', async () => {
    const pub = await TestSocket.open(`${t.wsUrl}/log-channel/k/publish`);
    await eventually(
      () => lines.some((l) => l.msg === 'publishing' && l.channel === 'log-channel' && l.level === INFO),
      10_000,
      'the publish to be logged',
    );
    pub.close();
    await eventually(
      () => lines.some((l) => l.msg === 'publisher left' && l.channel === 'log-channel' && l.level === INFO),
      10_000,
      'the end to be logged',
    );
  });
});
