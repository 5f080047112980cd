// Whole text frames read directly, past ws's Receiver (#17.1, session 13): the direct path
// is taken for reads made only of whole, final, masked text frames, every other read is
// left to ws untouched, and what a client receives (the forwarded messages, notices,
// pongs, the close) is the same as with the direct path off (`signal.fastReceive: false`):
// named cases, then random frame sequences written in random pieces to both servers.
// Fails loudly if a ws upgrade moves the internals the path reads: it would not be taken.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';
import { RawWsClient, clientFrame, type ClientFrameSpec } from '../fixtures/raw-ws-client.js';
import { directTextFrameCounts } from '../../src/api/signal/direct-text-frames.js';
import { prng } from '../fixtures/signal-frame-gen.js';

/** Both servers' Signal settings: a small message limit, so "too big" is cheap to reach. */
const SIGNAL = {
  maxFrameBytes: 300, // ws's own limit is max(1024, this): 301-1024 bytes the connection refuses
  rateLimitPerSecond: 100_000,
  rateLimitBurst: 100_000,
  registerRatePerMinute: 0,
  maxNamesPerIpPerDay: 0,
};

let direct: TestServer;
let viaWs: TestServer;

beforeAll(async () => {
  direct = await startTestServer({ signal: SIGNAL });
  viaWs = await startTestServer({ signal: { ...SIGNAL, fastReceive: false } });
}, 60_000);
afterAll(async () => {
  await direct?.close();
  await viaWs?.close();
});

async function cookieFor(t: TestServer, name: string): Promise<string> {
  const res = await t.server.app.inject({
    method: 'POST',
    url: '/v1/register',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ username: name }),
  });
  expect(res.statusCode).toBe(200);
  const header = res.headers['set-cookie'];
  return (Array.isArray(header) ? header[0]! : header!).split(';')[0]!;
}

const portOf = (t: TestServer): number => Number(new URL(t.url).port);

async function rawUser(t: TestServer, name: string): Promise<RawWsClient> {
  return RawWsClient.open(portOf(t), '/v1/connect', await cookieFor(t, name));
}

async function wsUser(t: TestServer, name: string): Promise<TestSocket> {
  return TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie: await cookieFor(t, name) });
}

const text = (payload: string | Buffer, more: Partial<ClientFrameSpec> = {}): Buffer =>
  clientFrame({ opcode: 1, payload, ...more });
const message = (target: string, type: string, payload: unknown = null): string =>
  JSON.stringify({ target, type, payload });
const forwarded = (from: string, target: string, type: string, payload: unknown = null): string =>
  JSON.stringify({ originator: from, target, type, payload });

/** What a sender and its receiver saw, in a form both servers must agree on. */
interface Outcome {
  forwarded: string[];
  notices: string[];
  pongs: string[];
  close: { code: number; reason: string } | undefined;
}

/**
 * Writes `writes` (each one socket write, a millisecond apart) as a new user `<name>a` to
 * `<name>b` on `t`, then a last message; settles when that message is forwarded or the
 * server closed the sender, and a third user's marker reached the receiver after it (so
 * everything the sender's messages caused has arrived).
 */
async function play(t: TestServer, name: string, writes: (to: string) => Buffer[]): Promise<Outcome> {
  const to = `${name}b`;
  const receiver = await wsUser(t, to);
  const marker = await wsUser(t, `${name}c`);
  const sender = await rawUser(t, `${name}a`);
  try {
    for (const w of writes(to)) {
      sender.write(w);
      await new Promise((r) => setTimeout(r, 1));
    }
    const last = forwarded(`${name}a`, to, 'last');
    sender.write(text(message(to, 'last')));
    sender.finish();
    await eventually(
      () => sender.isClosed || receiver.messages.includes(last),
      30_000,
      () =>
        `${name}: the last message or the close (sender got ${JSON.stringify(sender.frames.map((f) => f.opcode))})`,
    );
    marker.send(message(to, 'marker'));
    await receiver.nextJson('marker', 30_000);
    return {
      forwarded: receiver.messages.filter((m) => !m.includes('"marker"')),
      notices: sender.texts(),
      pongs: sender.frames.filter((f) => f.opcode === 10).map((f) => f.payload.toString('hex')),
      close: sender.closeFrame(),
    };
  } finally {
    sender.destroy();
    receiver.close();
    marker.close();
  }
}

/** Plays the same writes on both servers; the outcome, which must be the same. */
async function both(name: string, writes: (to: string) => Buffer[]): Promise<Outcome> {
  const a = await play(direct, name, writes);
  const b = await play(viaWs, name, writes);
  if (a.close && b.close && a.notices.length !== b.notices.length) {
    // Notices wait for the end of the turn; ws's close for a protocol error drops those of
    // its turn (as ever), and which notices share a turn with it depends on how TCP cut
    // the writes into reads, on either server. What arrived is then the same start.
    const [short, long] = a.notices.length < b.notices.length ? [a, b] : [b, a];
    expect(long.notices.slice(0, short.notices.length), `${name}: notices`).toEqual(short.notices);
    expect({ ...a, notices: [] }, `${name}: direct path against ws`).toEqual({ ...b, notices: [] });
    return a;
  }
  expect(a, `${name}: direct path against ws`).toEqual(b);
  return a;
}

describe('Signal: whole text frames read directly', () => {
  it('takes reads of whole text frames, one or several, and delivers each message as ws does', async () => {
    const before = { ...directTextFrameCounts };
    const out = await both('dt1', (to) => [
      text(message(to, 'one')),
      Buffer.concat([text(message(to, 'two', 'é🎉')), text(message(to, 'three', 'x'.repeat(200))), text('')]),
      text(message(to, 'zero-mask', [1, 2]), { mask: Buffer.alloc(4) }),
    ]);
    expect(out.forwarded).toEqual([
      forwarded('dt1a', 'dt1b', 'one'),
      forwarded('dt1a', 'dt1b', 'two', 'é🎉'),
      forwarded('dt1a', 'dt1b', 'three', 'x'.repeat(200)),
      forwarded('dt1a', 'dt1b', 'zero-mask', [1, 2]),
      forwarded('dt1a', 'dt1b', 'last'),
    ]);
    expect(out.notices).toHaveLength(1); // the empty message: INVALID_MESSAGE
    expect(JSON.parse(out.notices[0]!)).toMatchObject({ type: 'INVALID_MESSAGE' });
    expect(out.close).toBeUndefined();
    // Taken: 7 frames (the last included) in at least 4 reads on the direct server.
    expect(directTextFrameCounts.frames - before.frames).toBeGreaterThanOrEqual(7);
    expect(directTextFrameCounts.reads - before.reads).toBeGreaterThanOrEqual(4);
  }, 120_000);

  it('leaves a frame split across reads to ws, mid-payload or mid-header', async () => {
    const before = directTextFrameCounts.leftToWs;
    const frame = text(message('dt2b', 'split', 'y'.repeat(150)));
    const out = await both('dt2', () => [
      frame.subarray(0, 40),
      frame.subarray(40),
      frame.subarray(0, 1),
      frame.subarray(1, 3),
      frame.subarray(3),
      Buffer.concat([frame, frame.subarray(0, 7)]),
      frame.subarray(7),
    ]);
    expect(out.forwarded).toEqual([
      ...Array.from({ length: 4 }, () => forwarded('dt2a', 'dt2b', 'split', 'y'.repeat(150))),
      forwarded('dt2a', 'dt2b', 'last'),
    ]);
    expect(out.notices).toEqual([]);
    expect(directTextFrameCounts.leftToWs - before).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('leaves pings, fragments and binary frames to ws, which answers them as before', async () => {
    const before = directTextFrameCounts.leftToWs;
    const whole = message('dt3b', 'fragmented', 'z'.repeat(40));
    const out = await both('dt3', (to) => [
      Buffer.concat([
        text(message(to, 'before-ping')),
        clientFrame({ opcode: 9, payload: 'are you there' }),
        text(message(to, 'after-ping')),
      ]),
      Buffer.concat([
        text(whole.slice(0, 10), { fin: false }),
        clientFrame({ opcode: 9, payload: 'mid' }),
        clientFrame({ opcode: 0, payload: whole.slice(10, 30), fin: false }),
        clientFrame({ opcode: 0, payload: whole.slice(30) }),
      ]),
      clientFrame({ opcode: 2, payload: Buffer.from([1, 2, 3]) }),
      clientFrame({ opcode: 10, payload: 'unasked pong' }),
    ]);
    expect(out.forwarded).toEqual([
      forwarded('dt3a', 'dt3b', 'before-ping'),
      forwarded('dt3a', 'dt3b', 'after-ping'),
      forwarded('dt3a', 'dt3b', 'fragmented', 'z'.repeat(40)),
      forwarded('dt3a', 'dt3b', 'last'),
    ]);
    expect(out.pongs).toEqual([
      Buffer.from('are you there').toString('hex'),
      Buffer.from('mid').toString('hex'),
    ]);
    expect(out.notices.map((n) => JSON.parse(n) as { type: string; payload: unknown })).toEqual([
      expect.objectContaining({ type: 'INVALID_MESSAGE', payload: expect.stringContaining('binary') }),
    ]);
    expect(directTextFrameCounts.leftToWs - before).toBeGreaterThanOrEqual(4);
  }, 120_000);

  it('leaves invalid UTF-8 to ws, even after valid frames of the same read: those delivered, then 1007', async () => {
    const out = await both('dt4', (to) => [
      Buffer.concat([
        text(message(to, 'fine')),
        text(Buffer.concat([Buffer.from(message(to, 'bad').slice(0, -1)), Buffer.from([0xc3, 0x28, 0x7d])])),
        text(message(to, 'never')),
      ]),
    ]);
    expect(out.forwarded).toEqual([forwarded('dt4a', 'dt4b', 'fine')]);
    expect(out.close?.code).toBe(1007);
  }, 120_000);

  it('leaves oversize, unmasked, reserved-bit and close frames to ws: 1009, 1002, 1002, the close', async () => {
    const big = await both('dt5', (to) => [text(message(to, 'big', 'b'.repeat(1100)))]);
    expect(big.close?.code).toBe(1009);
    expect(big.forwarded).toEqual([]);
    // Over the connection's limit, within ws's: the connection closes it (1009 too).
    const tooBig = await both('dt6', (to) => [text(message(to, 'big', 'b'.repeat(500)))]);
    expect(tooBig.close).toEqual({ code: 1009, reason: 'message too big' });
    const unmasked = await both('dt7', (to) => [text(message(to, 'plain'), { masked: false })]);
    expect(unmasked.close?.code).toBe(1002);
    const rsv = await both('dt8', (to) => [text(message(to, 'rsv'), { rsv: 0x40 })]);
    expect(rsv.close?.code).toBe(1002);
    const long = await both('dt9', (to) => [text(message(to, 'long-form'), { lengthForm: 64 })]);
    expect(long.forwarded[0]).toBe(forwarded('dt9a', 'dt9b', 'long-form'));
    const close = Buffer.alloc(2);
    close.writeUInt16BE(1000);
    const closing = await both('dt10', (to) => [
      Buffer.concat([text(message(to, 'bye')), clientFrame({ opcode: 8, payload: close })]),
    ]);
    expect(closing.forwarded).toEqual([forwarded('dt10a', 'dt10b', 'bye')]);
    expect(closing.close?.code).toBe(1000);
  }, 240_000);

  it('answers in the order of the frames: TARGET_NOT_FOUND is not overtaken by a later notice', async () => {
    const nobody = (type: string): Buffer => text(message('nobody-here', type));
    const binary = clientFrame({ opcode: 2, payload: Buffer.from([1]) });
    // One read of text frames (the direct path), then one with a binary frame (ws's).
    const out = await both('dt11', () => [
      Buffer.concat([nobody('a'), text('{not json'), nobody('b')]),
      Buffer.concat([nobody('c'), binary, nobody('d'), binary]),
    ]);
    expect(out.notices.map((n) => (JSON.parse(n) as { type: string }).type)).toEqual([
      'TARGET_NOT_FOUND',
      'INVALID_MESSAGE',
      'TARGET_NOT_FOUND',
      'TARGET_NOT_FOUND',
      'INVALID_MESSAGE',
      'TARGET_NOT_FOUND',
      'INVALID_MESSAGE',
    ]);
  }, 120_000);

  it('random frame sequences in random pieces: the same outcome as through ws', async () => {
    const before = { ...directTextFrameCounts };
    for (let seed = 1; seed <= 200; seed++) {
      const writes = randomWrites(seed);
      await both(`fz${seed}`, writes);
    }
    // Both kinds of read happened.
    expect(directTextFrameCounts.reads - before.reads).toBeGreaterThan(50);
    expect(directTextFrameCounts.leftToWs - before.leftToWs).toBeGreaterThan(50);
  }, 600_000);
});

/** Random frames (mostly valid messages, some of every other kind), cut into random writes. */
function randomWrites(seed: number): (to: string) => Buffer[] {
  return (to) => {
    const r = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const pad = (n: number): string =>
      Array.from({ length: n }, () => pick(['a', 'b', ' ', 'é', '🎉', '"', '\\'])).join('');
    const mask = (): Buffer => (r() < 0.1 ? Buffer.alloc(4) : randomBytes(4));
    const frames: Buffer[] = [];
    const count = 5 + Math.floor(r() * 25);
    for (let i = 0; i < count; i++) {
      const x = r();
      if (x < 0.45) frames.push(text(message(to, `m${i}`, pad(Math.floor(r() * 20))), { mask: mask() }));
      else if (x < 0.55)
        frames.push(text(message(to, `m${i}`, pad(40 + Math.floor(r() * 60))), { mask: mask() }));
      else if (x < 0.6) frames.push(text(message('nobody-here', `m${i}`)));
      else if (x < 0.65) frames.push(text(pick(['{not json', '', '[]', '{"target":1}', '"x"'])));
      else if (x < 0.7) frames.push(clientFrame({ opcode: 9, payload: pad(Math.floor(r() * 10)) }));
      else if (x < 0.73) frames.push(clientFrame({ opcode: 10, payload: 'p' }));
      else if (x < 0.77) frames.push(clientFrame({ opcode: 2, payload: Buffer.from(pad(5)) }));
      else if (x < 0.85) {
        const whole = message(to, `f${i}`, pad(Math.floor(r() * 30)));
        const cut = 1 + Math.floor(r() * (whole.length - 2));
        frames.push(text(whole.slice(0, cut), { fin: false }));
        if (r() < 0.3) frames.push(clientFrame({ opcode: 9, payload: 'mid' }));
        frames.push(clientFrame({ opcode: 0, payload: whole.slice(cut) }));
      } else if (x < 0.88)
        frames.push(text(message(to, `m${i}`, pad(5)), { lengthForm: pick([16, 64] as const) }));
      else if (x < 0.9) frames.push(text(message(to, `big${i}`, 'q'.repeat(150 + Math.floor(r() * 300)))));
      // Rarely, what ends the connection.
      else if (x < 0.92) frames.push(text(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
      else if (x < 0.93) frames.push(text(Buffer.from(message(to, `cut${i}`, 'é')).subarray(0, -3)));
      else if (x < 0.94) frames.push(text(message(to, `plain${i}`), { masked: false }));
      else if (x < 0.95) frames.push(text(message(to, `huge${i}`, 'h'.repeat(1100))));
      else if (x < 0.96) frames.push(clientFrame({ opcode: pick([3, 11]), payload: 'odd' }));
      else if (x < 0.97) frames.push(text(message(to, `rsv${i}`), { rsv: 0x40 }));
      else frames.push(text(message(to, `m${i}`)));
      // Mutated: a bit of the first byte (FIN, RSV, opcode), the mask bit, or a payload
      // byte flipped. Not the length: a frame longer than what follows waits for ever.
      if (r() < 0.08) {
        const f = Buffer.from(frames[frames.length - 1]!);
        const where = r();
        if (where < 0.4) f[0] = f[0]! ^ (1 << Math.floor(r() * 8));
        else if (where < 0.5) f[1] = f[1]! ^ 0x80;
        else if (f.length > 8) {
          const k = 8 + Math.floor(r() * (f.length - 8));
          f[k] = f[k]! ^ (1 << Math.floor(r() * 8));
        }
        frames[frames.length - 1] = f;
      }
    }
    const all = Buffer.concat(frames);
    // Cut points: anywhere (mid-header included), some writes of several frames.
    const pieces = Math.min(all.length, 1 + Math.floor(r() * 12));
    const cuts = new Set<number>();
    while (cuts.size < pieces - 1) cuts.add(1 + Math.floor(r() * (all.length - 1)));
    // Half the time, cut on frame bounds only: reads the direct path takes whole.
    const bounds: number[] = [];
    let at = 0;
    for (const f of frames) bounds.push((at += f.length));
    const points = (r() < 0.5 ? [...cuts] : bounds.filter(() => r() < 0.4)).sort((a, b) => a - b);
    const writes: Buffer[] = [];
    let from = 0;
    for (const p of points) {
      if (p <= from || p >= all.length) continue;
      writes.push(all.subarray(from, p));
      from = p;
    }
    writes.push(all.subarray(from));
    return writes;
  };
}
