import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser, type SseClient } from '../fixtures/voip-client.js';
import { listenRaw, roomId, roomMembers, roomView } from '../fixtures/voip-room.js';
import { eventually } from '../fixtures/ws-client.js';

// #17.3: a room's listeners hanging up at once. Their slots are freed a slice per turn of
// the event loop (Departures), the members who stay are told who left, and the expected
// connection resets cost no formatted error stack (their requests are retired first).

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ http: { maxConnectionsPerIp: 0 }, voip: { maxRoomMembers: 1000 } });
}, 60_000);
afterAll(() => t.close());

const LEAVERS = 300;
const STAYERS = 5;
const BURST = 20;
/** Departures' slice (media-sessions.ts). */
const RELEASES_PER_TURN = 64;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics?name=${name}`)).text();
  return Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
}

/**
 * Counts, while `run` runs, the stacks formatted for Node's "aborted" resets of requests,
 * and the resets found by reading a socket (rather than by the next write to it).
 */
async function countResets(run: () => Promise<void>): Promise<{ aborted: number; read: number }> {
  const had = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
  const prev = had?.value as ((err: Error, frames: NodeJS.CallSite[]) => unknown) | undefined;
  const counts = { aborted: 0, read: 0 };
  Error.prepareStackTrace = (err: Error, frames: NodeJS.CallSite[]): unknown => {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ECONNRESET' && e.message === 'aborted') counts.aborted++;
    if (e.code === 'ECONNRESET' && e.syscall === 'read') counts.read++;
    if (prev) return prev(err, frames);
    const at = frames.map((f) => `    at ${f.getFileName() ?? '?'}:${f.getLineNumber() ?? '?'}`);
    return `${err.name}: ${err.message}\n${at.join('\n')}`;
  };
  try {
    await run();
  } finally {
    if (had) Object.defineProperty(Error, 'prepareStackTrace', had);
    else Reflect.deleteProperty(Error, 'prepareStackTrace');
  }
  return counts;
}

describe('VOIP room: listeners hanging up at once', () => {
  it('frees every slot of 300 listeners who hang up at once, a slice per turn; those who stay see them go; no stack built for the resets', async () => {
    const room = 'leave-room';
    const speaker = new KeyUser(t.url);
    const speakerEvents = await speaker.events();
    const up = await speaker.uploadSocket('/upRoom', { roomID: room });
    const roomid = (await roomId(t.url, room))!;
    const join = async (u: KeyUser) =>
      listenRaw(t.url, `/joinRoom?${await u.mediaQuery({ roomID: room, format: 'ogg' })}`);

    const stayers = Array.from({ length: STAYERS }, () => new KeyUser(t.url));
    const watchers: SseClient[] = [speakerEvents];
    const kept: net.Socket[] = [];
    for (const u of stayers) {
      watchers.push(await u.events());
      kept.push(await join(u));
    }
    const leavers = Array.from({ length: LEAVERS }, () => new KeyUser(t.url));
    const sockets: net.Socket[] = [];
    for (let i = 0; i < LEAVERS; i += BURST)
      sockets.push(...(await Promise.all(leavers.slice(i, i + BURST).map(join))));
    // Bad input on the way: one listener sends garbage after its request (nobody reads
    // it: the listener keeps its stream), another leaves half a request.
    const rude = new KeyUser(t.url);
    const rudeSocket = await join(rude);
    const half = await import('node:net').then(
      ({ default: net }) =>
        new Promise<net.Socket>((resolve, reject) => {
          const { hostname, port } = new URL(t.url);
          const s = net.connect(Number(port), hostname, () => resolve(s));
          s.once('error', reject);
        }),
    );
    half.write('GET /joinRoom?roomID=leave-room HTTP/1.1\r\nHost: x\r\n');
    await eventually(
      async () => (await roomMembers(t.url, roomid)).size === 1 + STAYERS + LEAVERS + 1,
      60_000,
      'everyone joined',
    );

    rudeSocket.write('\x00\x01 not http at all\r\n\r\n');
    let after = 0;
    rudeSocket.on('data', (c: Buffer) => void (after += c.length));
    await eventually(() => after > 0, 30_000, 'audio still coming after the garbage');
    expect((await roomMembers(t.url, roomid)).get(rude.id)).toEqual({ in: '0', out: '1' });

    const released0 = await metric('chorus_voip_listener_releases_total');
    const resets = await countResets(async () => {
      // Abruptly (a reset, as a closed tab with audio still queued), all in one go.
      for (const s of [...sockets, rudeSocket]) s.resetAndDestroy();
      half.destroy();
      await eventually(
        async () => (await roomMembers(t.url, roomid)).size === 1 + STAYERS,
        60_000,
        'every leaver`s slot freed',
      );
    });
    expect(resets).toEqual({ aborted: 0, read: 0 });
    const listed = await roomMembers(t.url, roomid);
    expect([...listed.keys()].sort()).toEqual([speaker.id, ...stayers.map((u) => u.id)].sort());
    expect([...listed.values()].filter((c) => c.out === '1')).toHaveLength(STAYERS);
    expect(await metric('chorus_voip_listener_releases_total')).toBeGreaterThanOrEqual(
      released0 + LEAVERS + 1,
    );
    const slice = await metric('chorus_voip_listener_release_slice_max');
    expect(slice).toBeGreaterThan(0);
    expect(slice).toBeLessThanOrEqual(RELEASES_PER_TURN);

    // Each member who stayed is told every leaver left, and of no one who stayed leaving.
    await eventually(
      () =>
        watchers.every((events) => {
          const seen = roomView(events, roomid);
          return (
            leavers.every((u) => seen.get(u.id)?.out === '0') &&
            seen.get(rude.id)?.out === '0' &&
            stayers.every((u) => seen.get(u.id)?.out !== '0')
          );
        }),
      60_000,
      'those who stayed saw the leaves',
    );

    // A leaver comes back: its slot is free, and it is in the room again.
    const back = await join(leavers[0]!);
    await eventually(async () => (await roomMembers(t.url, roomid)).has(leavers[0]!.id), 30_000, 'back in');

    back.destroy();
    for (const s of kept) s.destroy();
    up.close();
    await eventually(async () => (await roomId(t.url, room)) === undefined, 60_000, 'room closed');
    for (const w of watchers) w.close();
  }, 240_000);
});
