import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { KeyUser, type SseClient } from '../fixtures/voip-client.js';
import { listenRaw, roomMembers, roomView, type Conf } from '../fixtures/voip-room.js';
import { eventually } from '../fixtures/ws-client.js';

// #17.3: a room's setAudioConf notices are gathered per room and sent as one batch per
// member; a room filling or emptying in bursts must leave every member with the right
// state of the others, and a burst of leaves must not cost a message per leave per member.

let t: TestServer;
beforeAll(async () => {
  // 200 listeners and their event streams, from one address.
  t = await startTestServer({ http: { maxConnectionsPerIp: 0 }, voip: { maxRoomMembers: 1000 } });
}, 60_000);
afterAll(() => t.close());

const LISTENERS = 200;
const BURST = 20;
/** Listeners who also read their events (a member's view of the others). */
const WATCHERS = 20;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  return Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
}

const members = (roomid: number) => roomMembers(t.url, roomid);
const view = roomView;
const listen = listenRaw;

/** Whether `events` shows every member but `self` as listed, and anyone else as gone. */
function agrees(seen: Map<string, Conf>, listed: Map<string, Conf>, self: string, expected: string[]) {
  for (const id of expected) {
    if (id === self) continue;
    const want = listed.get(id) ?? { in: '0', out: '0' };
    const got = seen.get(id);
    if (got?.in !== want.in || got.out !== want.out) return false;
  }
  return !seen.has(self);
}

describe('VOIP room notices (setAudioConf) in bursts', () => {
  it('leaves every member with the right state of the others as 200 listeners join and leave in bursts, a message per member per burst', async () => {
    const room = 'notices-room';
    const speaker = new KeyUser(t.url);
    const speakerEvents = await speaker.events();
    const up: WebSocket = await speaker.uploadSocket('/upRoom', { roomID: room });
    const roomid = ((await (await fetch(`${t.url}/listRoom`)).json()) as { id: number; name: string }[]).find(
      (r) => r.name === room,
    )!.id;

    const users = Array.from({ length: LISTENERS }, () => new KeyUser(t.url));
    const watchers = new Map<string, SseClient>();
    for (const u of users.slice(0, WATCHERS)) watchers.set(u.id, await u.events());
    const sockets = new Map<string, net.Socket>();
    // Wrong input on the way: a bad signature and a missing room are refused, and
    // nobody is told of them.
    const stranger = new KeyUser(t.url);
    const bad = new URLSearchParams({ PKey: stranger.id, Signature: '00', roomID: room, format: 'ogg' });
    await expect(listen(t.url, `/joinRoom?${bad.toString()}`)).rejects.toThrow(/HTTP\/1.1 4/);
    const noRoom = await stranger.mediaQuery({ format: 'ogg' });
    await expect(listen(t.url, `/joinRoom?${noRoom}`)).rejects.toThrow(/HTTP\/1.1 4/);

    for (let i = 0; i < LISTENERS; i += BURST) {
      await Promise.all(
        users.slice(i, i + BURST).map(async (u) => {
          sockets.set(
            u.id,
            await listen(t.url, `/joinRoom?${await u.mediaQuery({ roomID: room, format: 'ogg' })}`),
          );
        }),
      );
    }
    const everyone = [speaker.id, ...users.map((u) => u.id)];
    await eventually(async () => (await members(roomid)).size === LISTENERS + 1, 60_000, 'everyone joined');

    // Each watcher hears of everyone who joined after its burst (of its own burst, those
    // who joined before it need not be told); the speaker of every listener.
    let wrong = '';
    const check = async (what: string) => {
      await eventually(
        async () => {
          const listed = await members(roomid);
          wrong = 'the speaker';
          if (!agrees(view(speakerEvents, roomid), listed, speaker.id, everyone)) return false;
          for (const [id, events] of watchers) {
            const i = users.findIndex((u) => u.id === id);
            const later = users.slice((Math.floor(i / BURST) + 1) * BURST);
            wrong = `watcher ${i}`;
            if (
              !agrees(
                view(events, roomid),
                listed,
                id,
                later.map((u) => u.id),
              )
            )
              return false;
          }
          return true;
        },
        60_000,
        () => `${what} (${wrong} did not)`,
      );
    };
    await check('every member saw the joins');
    expect(view(speakerEvents, roomid).has(stranger.id)).toBe(false);

    // Half the room hangs up at once, abruptly (no watcher among them).
    const leaving = users.slice(LISTENERS / 2);
    const before = await metric('chorus_voip_room_notice_messages_total');
    for (const u of leaving) sockets.get(u.id)!.destroy();
    await eventually(async () => (await members(roomid)).size === LISTENERS / 2 + 1, 60_000, 'half left');
    await check('every member saw the leaves');
    const sent = (await metric('chorus_voip_room_notice_messages_total')) - before;
    // One per leave per remaining member would be ~100 x 150 = 15,000 messages; a batch
    // per 50 ms window costs one per member per window (the leaves take a window or two).
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan((LISTENERS + 1) * 10);

    // The rest leave in bursts; then the speaker, and the room is gone.
    for (let i = 0; i < LISTENERS / 2; i += BURST)
      for (const u of users.slice(i, i + BURST)) sockets.get(u.id)!.destroy();
    await eventually(async () => (await members(roomid)).size === 1, 60_000, 'listeners gone');
    await eventually(
      async () => {
        const seen = view(speakerEvents, roomid);
        return users.every((u) => seen.get(u.id)?.out === '0');
      },
      60_000,
      'the speaker saw everyone leave',
    );
    up.close();
    await eventually(
      async () =>
        !((await (await fetch(`${t.url}/listRoom`)).json()) as { name: string }[]).some(
          (r) => r.name === room,
        ),
      30_000,
      'room closed',
    );
    speakerEvents.close();
    for (const e of watchers.values()) e.close();
  }, 180_000);
});
