// One round of SFU churn over Blue Sky: rooms of `legsPerRoom` legs (one publisher, the
// rest its subscribers), held by worker processes (sfu-legs.ts). Blue Sky has no route
// to leave a room, so the two ways a leg ends are: gracefully, when the room's admin
// closes the room (`DELETE /webrtc/room/:id`, every peer in it closed by the server),
// and abruptly, when the clients just close their peer connections and the server
// finds out only by its silence timeout. Even rooms end the first way (they are created
// each round), odd rooms the second (created once and reused, so the store does not
// grow round after round).
import { fork, type ChildProcess } from 'node:child_process';
import { Failures } from './failures.js';

export interface SfuRound {
  /** Legs planned this round (those of a room that could not be created count as failures). */
  attempted: number;
  connected: number;
  /** 503 answers (full or overloaded) that were retried. */
  refused: number;
  noMedia: number;
  /** New test clients tried after the client's own DTLS race (see NdcClient). */
  clientRetries: number;
  roomsClosed: number;
  failures: Failures;
}

const ADMIN = 'soak-admin';
const READY_TIMEOUT_MS = 600_000;
const EXIT_TIMEOUT_MS = 15_000;

interface Ready {
  type: 'ready';
  legs: number;
  connected: number;
  refused: number;
  noMedia: number;
  clientRetries: number;
  failures: Record<string, number>;
}

async function createRoom(base: string): Promise<string> {
  const res = await fetch(`${base}/webrtc/room`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: ADMIN }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id) throw new Error(`create room: HTTP ${res.status}`);
  return body.id;
}

export class SfuChurn {
  private readonly rooms: number;
  private readonly legsPerRoom: number[];
  /** Odd rooms, created once. */
  private readonly kept = new Map<number, string>();
  /** Even rooms of the current round. */
  private readonly closing = new Map<number, string>();
  private workers: ChildProcess[] = [];
  private round: SfuRound | undefined;

  constructor(
    private readonly base: string,
    legs: number,
    legsPerRoom: number,
    private readonly workerCount: number,
  ) {
    this.rooms = legs > 0 ? Math.ceil(legs / legsPerRoom) : 0;
    this.legsPerRoom = Array.from({ length: this.rooms }, (_, i) =>
      Math.min(legsPerRoom, legs - i * legsPerRoom),
    );
  }

  /** Creates the rooms that live across rounds (before the baseline is measured). */
  async setup(): Promise<void> {
    for (let i = 1; i < this.rooms; i += 2) this.kept.set(i, await createRoom(this.base));
  }

  async connect(): Promise<void> {
    const failures = new Failures();
    const r: SfuRound = {
      attempted: this.legsPerRoom.reduce((sum, n) => sum + n, 0),
      connected: 0,
      refused: 0,
      noMedia: 0,
      clientRetries: 0,
      roomsClosed: 0,
      failures,
    };
    this.round = r;
    this.closing.clear();
    const ids: Array<string | undefined> = [];
    for (let i = 0; i < this.rooms; i++) {
      if (i % 2 === 1) ids[i] = this.kept.get(i);
      else {
        try {
          const id = await createRoom(this.base);
          this.closing.set(i, id);
          ids[i] = id;
        } catch (err) {
          failures.add(err);
          failures.merge({ 'legs not attempted: room not created': this.legsPerRoom[i]! });
        }
      }
    }
    // Rooms dealt round-robin to the workers, so each gets graceful and abrupt ones.
    const plans = Array.from({ length: Math.min(this.workerCount, this.rooms) }, () => ({
      rooms: [] as string[],
      legsPerRoom: [] as number[],
    }));
    ids.forEach((id, i) => {
      if (id === undefined) return;
      const p = plans[i % plans.length]!;
      p.rooms.push(id);
      p.legsPerRoom.push(this.legsPerRoom[i]!);
    });
    const ready = await Promise.all(
      plans
        .filter((p) => p.rooms.length > 0)
        .map((p) => {
          const w = fork(new URL('./sfu-legs.ts', import.meta.url).pathname, [this.base, JSON.stringify(p)], {
            execArgv: ['--import', 'tsx'],
          });
          this.workers.push(w);
          return this.awaitMessage<Ready>(w, 'ready', READY_TIMEOUT_MS).catch((err: unknown) => {
            failures.add(err);
            return undefined;
          });
        }),
    );
    for (const m of ready) {
      if (!m) continue;
      r.connected += m.connected;
      r.refused += m.refused;
      r.noMedia += m.noMedia;
      r.clientRetries += m.clientRetries;
      failures.merge(m.failures);
    }
  }

  private awaitMessage<T extends { type: string }>(w: ChildProcess, type: string, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`sfu worker: no ${type} within ${ms / 1000} s`)), ms);
      const onMessage = (m: T): void => {
        if (m.type === type) done(undefined, m);
      };
      const onExit = (code: number | null, signal: string | null): void =>
        done(new Error(`sfu worker exited with ${signal ?? code} before ${type}`));
      const done = (err?: Error, m?: T): void => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('exit', onExit);
        if (err) reject(err);
        else resolve(m!);
      };
      w.on('message', onMessage);
      w.once('exit', onExit);
    });
  }

  /** Closes the even rooms through the admin, then has the workers drop every peer and exit. */
  async drop(): Promise<SfuRound> {
    const r = this.round!;
    for (const id of this.closing.values()) {
      try {
        const res = await fetch(`${this.base}/webrtc/room/${id}`, {
          method: 'DELETE',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user_id: ADMIN }),
          signal: AbortSignal.timeout(15_000),
        });
        await res.arrayBuffer();
        if (res.status === 204) r.roomsClosed++;
        else r.failures.add(`close room: HTTP ${res.status}`);
      } catch (err) {
        r.failures.add(err);
      }
    }
    this.closing.clear();
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.exitCode !== null || w.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.send({ type: 'drop' });
        const timer = setTimeout(() => w.kill('SIGKILL'), EXIT_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }),
    );
    this.workers = [];
    return r;
  }

  /** Kills any worker still running (by its PID); for the error path. */
  killAll(): void {
    for (const w of this.workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    this.workers = [];
  }
}
