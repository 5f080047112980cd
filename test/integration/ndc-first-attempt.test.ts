import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChorus, type ChorusProcess } from '../fixtures/chorus-process.js';
import { NdcPublisher, NdcSubscriber } from '../fixtures/ndc-peer.js';
import { eventually } from '../fixtures/ws-client.js';

// #18.7: libdatachannel offerers (node-datachannel here; WHIP clients and load tools are
// built the same way) connect on the first attempt. Such an offerer hands the answer to its
// ICE agent before it stores the answer's DTLS fingerprint; when the SFU had already
// checked the offerer's candidates, ICE connected inside that call and the handshake failed
// ("certificate verify failed", about 1 in 9 subscribers here on a loaded box). The SFU now
// waits for the offerer's own checks (media/webrtc/sdp.ts, offerWithoutCandidates). The
// server is its own process, as in production; the clients are real node-datachannel peers
// and a failed connection is never retried (test/fixtures/ndc-peer.ts).

const SUBSCRIBERS = 200;
/** Offers in flight at once: enough to load both cores, few enough for a shared CI box. */
const CONCURRENCY = 8;

let chorus: ChorusProcess;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'chorus-ndc-'));
  chorus = await runChorus(
    {
      HTTP_PORT: '0',
      BIND_ADDRESS: '127.0.0.1',
      WEBRTC_BIND_ADDRESS: '127.0.0.1',
      DATA_DIR: dataDir,
      // Every client comes from 127.0.0.1 and the machine is shared: no per-address caps, no shedding.
      HTTP_MAX_CONNECTIONS_PER_IP: '0',
      WEBRTC_OVERLOAD_BUSY_PERCENT: '0',
    },
    [],
    { startTimeoutMs: 150_000 },
  );
}, 180_000);

afterAll(async () => {
  if (chorus) {
    process.kill(chorus.child.pid!, 'SIGTERM');
    await chorus.exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function createRoom(): Promise<string> {
  const res = await fetch(`${chorus.url}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 'ndc-admin' }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

describe('node-datachannel offerers connect on the first attempt', () => {
  it(`${SUBSCRIBERS} subscribers, ${CONCURRENCY} at a time: every one connects first time and gets media`, async () => {
    const room = await createRoom();
    const pub = new NdcPublisher();
    try {
      const published = await pub.publish(chorus.url, room, 'ndc-pub');
      expect(published.status).toBe(200);
      pub.start();

      const failures: string[] = [];
      // Whether this process (the clients) or the server stalled: under a loaded whole suite,
      // all eight offers in flight once timed out together (session 14); the clients' own
      // event-loop delay and the longest close of a node-datachannel peer tell the two apart.
      const loop = monitorEventLoopDelay({ resolution: 20 });
      loop.enable();
      let longestCloseMs = 0;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < SUBSCRIBERS) {
          const i = next++;
          const sub = new NdcSubscriber();
          try {
            const r = await sub.subscribe(chorus.url, room, `ndc-sub${i}`, 'ndc-pub');
            if (r.status !== 200) failures.push(`sub${i}: HTTP ${r.status} ${r.error ?? ''}`);
            else await eventually(() => sub.videoPackets.length > 0, 20_000, `media to sub${i}`);
          } catch (err) {
            // fetch's own message is only "fetch failed": the cause says which (a reset, a
            // keep-alive socket the server closed as the request went, a connect timeout).
            const cause = (err as Error).cause as (Error & { code?: string }) | undefined;
            const why = cause ? ` (${cause.code ?? cause.name}: ${cause.message})` : '';
            failures.push(`sub${i}: ${(err as Error).message}${why}`);
          } finally {
            const closing = performance.now();
            sub.close();
            longestCloseMs = Math.max(longestCloseMs, performance.now() - closing);
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      loop.disable();
      const clients = `the clients' event loop stalled up to ${Math.round(loop.max / 1e6)} ms; longest peer close ${Math.round(longestCloseMs)} ms`;
      expect(failures, clients).toEqual([]);
    } finally {
      pub.close();
    }
  }, 600_000);
});
