import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { powerAt, samplesOf, ToneSource } from '../fixtures/audio.js';
import { killNode, startCluster, type Cluster } from '../fixtures/cluster.js';
import { hasTool } from '../fixtures/system-tools.js';
import { KeyUser, talk } from '../fixtures/voip-client.js';
import { eventually } from '../fixtures/ws-client.js';
import { readJson } from '../fixtures/cluster-read.js';

// VOIP rooms when a node is killed with SIGKILL: a node holding only uploads and
// listeners (the room goes on, its members come back through another node), and the
// node running the room's mixer (everyone's streams end promptly, and the room opens
// again on a live node when they come back).

let cluster: Cluster;
const url = (i: number): string => cluster.nodes[i]!.url;
const open: { close(): void }[] = [];

/** A WAV listener: what it heard lately, and whether its stream ended. */
class Ear {
  private body = Buffer.alloc(0);
  private total = 0;
  readonly ended: Promise<void>;

  private constructor(res: Response) {
    const reader = res.body!.getReader();
    this.ended = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          this.total += value.length;
          // The last second (48 kHz s16le) is enough to tell who is heard.
          this.body = Buffer.concat([this.body, value]).subarray(-96_000);
        }
      } catch {
        // cut off: ended all the same
      }
    })();
  }

  static async join(u: KeyUser, i: number, room: string): Promise<Ear> {
    const abort = new AbortController();
    open.push({ close: () => abort.abort() });
    const q = await u.at(url(i)).mediaQuery({ roomID: room, format: 'wav' });
    const res = await fetch(`${url(i)}/joinRoom?${q}`, { method: 'POST', signal: abort.signal });
    expect(res.status, res.ok ? '' : await res.text()).toBe(200);
    return new Ear(res);
  }

  get bytes(): number {
    return this.total;
  }

  /** Whether `freq` dominates the last half second (other tones 20 dB below). */
  hears(freq: number, ...not: number[]): boolean {
    if (this.body.length < 48_000) return false;
    const s = samplesOf(this.body.subarray(-48_000));
    const p = powerAt(s, freq);
    return p > 1e4 && not.every((f) => powerAt(s, f) < p);
  }
}

/** A member talking a tone on node `i` until `stop()`. */
async function speaker(u: KeyUser, i: number, room: string, freq: number) {
  const ws: WebSocket = await u.at(url(i)).uploadSocket('/upRoom', { roomID: room });
  let stopped = false;
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const tone = new ToneSource(freq);
  const talking = (async () => {
    while (!stopped && ws.readyState === ws.OPEN) await talk(ws, (ms) => tone.next(ms), 200);
  })();
  const stop = async () => {
    stopped = true;
    ws.terminate();
    await talking;
  };
  open.push({ close: () => void stop() });
  return { ws, closed, stop };
}

const run = hasTool('nats-server', 'nats-server');

describe.skipIf(!run)('VOIP rooms when a node dies', () => {
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);

  afterAll(async () => {
    for (const o of open) o.close();
    await cluster?.stop();
  });

  it('goes on without a node that held only uploads and listeners; its members come back elsewhere', async () => {
    const room = `deck-${Date.now()}`;
    const [s, m, l] = [new KeyUser(url(0)), new KeyUser(url(0)), new KeyUser(url(0))];
    // The mixer on node 0; m talks and listens through node 2; l listens on node 1.
    const s0 = await speaker(s, 0, room, 440);
    const m2 = await speaker(m, 2, room, 1000);
    const mEar = await Ear.join(m, 2, room);
    const lEar = await Ear.join(l, 1, room);
    await eventually(async () => lEar.hears(1000) && lEar.hears(440), 20_000, 'l hears s and m');
    await eventually(async () => mEar.hears(440, 1000), 20_000, 'm hears s, not itself');

    await killNode(cluster.nodes[2]!.process);
    // l goes on hearing s (m's voice stops with its node).
    await eventually(async () => lEar.hears(440, 1000), 20_000, 'l hears s alone');
    const heard = lEar.bytes;
    await eventually(async () => lEar.bytes > heard + 96_000, 20_000, 'another second for l');
    // m comes back through node 1 at once, before the cluster declares node 2 gone: the
    // mixer's node finds node 2 dead when m's slots are asked for again.
    const back = await speaker(m, 1, room, 1000);
    const mBack = await Ear.join(m, 1, room);
    await eventually(async () => lEar.hears(1000) && lEar.hears(440), 20_000, 'l hears m again');
    await eventually(async () => mBack.hears(440, 1000), 20_000, 'm hears s again, not itself');
    await back.stop();
    await s0.stop();
    await m2.stop();
    await cluster.restart(2);
  }, 120_000);

  it("ends everyone's streams when the mixer's node dies; they open the room again on a live node", async () => {
    const room = `raft-${Date.now()}`;
    const [a, b, c] = [new KeyUser(url(0)), new KeyUser(url(0)), new KeyUser(url(0))];
    // The mixer on node 1 (a opens the room there); b talks on node 2 and listens on
    // node 0; c listens on node 2.
    const a1 = await speaker(a, 1, room, 440);
    const b2 = await speaker(b, 2, room, 1000);
    const bEar = await Ear.join(b, 0, room);
    const cEar = await Ear.join(c, 2, room);
    await eventually(async () => cEar.hears(440) && cEar.hears(1000), 20_000, 'c hears a and b');

    await killNode(cluster.nodes[1]!.process);
    // A clear end on the other nodes, not a stream of silence.
    await Promise.all([bEar.ended, cEar.ended, b2.closed]);
    // They come back (to other nodes than before): the room opens on a live node.
    const bBack = await speaker(b, 0, room, 1000);
    const cBack = await Ear.join(c, 2, room);
    await eventually(async () => cBack.hears(1000), 20_000, 'c hears b in the room reopened');
    const members = await readJson<{ pubkey: string }[]>(`${url(2)}/listMembers?roomID=${room}`);
    expect(members.map((x) => x.pubkey).sort()).toEqual([b.id, c.id].sort());
    await bBack.stop();
    await a1.stop();
    await b2.stop();
  }, 120_000);
});
