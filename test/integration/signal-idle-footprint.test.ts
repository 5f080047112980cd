import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';
import { TestSocket, eventually } from '../fixtures/ws-client.js';

// A full collection on demand, to see what an open socket still holds.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

let t: TestServer;
/** The upgrade request of each /v1/connect, held weakly: a strong reference would keep it. */
const upgrades: Array<WeakRef<IncomingMessage>> = [];

beforeAll(async () => {
  t = await startTestServer();
  t.server.app.server.on('upgrade', (req: IncomingMessage) => upgrades.push(new WeakRef(req)));
});
afterAll(async () => {
  await t.close();
});

async function connect(name: string): Promise<TestSocket> {
  const res = await fetch(`${t.url}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name }),
  });
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  return TestSocket.open(`${t.wsUrl}/v1/connect`, { cookie });
}

describe('An idle Signal connection keeps only what it needs (#17)', () => {
  it('lets go of its upgrade request (headers, response, Fastify request and logger) while it stays open', async () => {
    const sockets: TestSocket[] = [];
    for (let i = 0; i < 20; i++) sockets.push(await connect(`idle-${i}`));
    expect(upgrades).toHaveLength(20);
    // Every request is collectable although its socket is open.
    await eventually(
      () => {
        collectGarbage();
        return upgrades.every((r) => r.deref() === undefined);
      },
      10_000,
      'the upgrade requests to be collected',
    );
    // And the sockets still work: a message each way between two of them.
    sockets[0]!.send({ target: 'idle-1', type: 'offer', payload: { sdp: 'x' } });
    expect(JSON.parse(await sockets[1]!.next())).toEqual({
      originator: 'idle-0',
      target: 'idle-1',
      type: 'offer',
      payload: { sdp: 'x' },
    });
    sockets[1]!.send({ target: 'idle-0', type: 'answer', payload: null });
    expect(JSON.parse(await sockets[0]!.next())).toMatchObject({ originator: 'idle-1', type: 'answer' });
    for (const s of sockets) s.close();
  });
});
