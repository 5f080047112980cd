import cluster, { type Worker } from 'node:cluster';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { assertUdpPortFree } from '../media/webrtc/udp-port-check.js';
import { nodeIdFor } from '../ports/node-id.js';
import { findOnPath, LocalNatsServer } from './local-nats-server.js';
import { reasonOf, StartupError } from './startup-error.js';
import { planWorkers, type WorkerPlan } from './worker-plan.js';

/** What a worker tells the supervisor once its listeners are bound (main.ts sends it). */
export const workerListening = z.object({
  chorus: z.literal('listening'),
  http: z.string(),
  https: z.string().optional(),
});
export type WorkerListening = z.infer<typeof workerListening>;

/** A worker that died is started again after 0.5 s, doubling to 30 s while it keeps dying. */
const RESTART_MS = { first: 500, max: 30_000 };
/** A worker that ran this long counts as healthy again: its next death restarts at once. */
const HEALTHY_AFTER_MS = 60_000;
/** Past the drain grace, what the workers' own close may take (main.ts: grace + 5 s) and some. */
const STOP_SLACK_MS = 10_000;

interface Slot {
  readonly plan: WorkerPlan;
  worker: Worker | undefined;
  startedAt: number;
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
  listening: boolean;
}

/**
 * `chorus serve --processes N`: this process binds nothing itself. It starts (or uses)
 * NATS, forks N workers (main.ts again, each a full Chorus node, see worker-plan.ts),
 * restarts one that dies, and on SIGTERM/SIGINT has each drain and exit, then stops
 * the nats-server it started. Resolves with the exit code: 0 after a clean stop, 2
 * when start-up cannot work (one line on stderr, like a single process), 1 when a
 * worker failed at start for another reason or did not stop cleanly.
 */
export async function superviseProcesses(config: Config, count: number, log: Logger): Promise<number> {
  const dataDir = resolve(config.store.dataDir);
  let machineId: string;
  try {
    machineId = nodeIdFor(config.cluster.nodeId, dataDir);
  } catch (err) {
    throw new StartupError(`cannot keep the node id in ${dataDir}: ${reasonOf(err)}; set DATA_DIR`, {
      cause: err,
    });
  }
  const configured = config.cluster.natsUrl?.join(',');
  const natsBinary = configured ? undefined : findOnPath('nats-server', process.env.PATH);
  if (!configured && !natsBinary) {
    throw new StartupError(
      `--processes ${count} needs NATS: install nats-server (Debian/Ubuntu: apt install nats-server) or set CLUSTER_NATS_URL`,
    );
  }
  // Planned with a placeholder URL first: a plan that cannot work stops before nats-server starts.
  planWorkers(config, count, machineId, configured ?? 'nats://127.0.0.1:4222');
  const webrtcOn = (config.bluesky.enabled || config.beep.enabled) && !config.webrtc.portRange;
  if (webrtcOn) {
    for (let i = 0; i < count; i++) {
      const port = config.webrtc.udpPort === 0 ? 0 : config.webrtc.udpPort + i;
      try {
        await assertUdpPortFree(port, config.webrtc.bindAddress);
      } catch (err) {
        throw new StartupError(`${reasonOf(err)} (process ${i} of ${count} uses WEBRTC_UDP_PORT + ${i})`, {
          cause: err,
        });
      }
    }
  }
  const nats = natsBinary
    ? await LocalNatsServer.start({ binary: natsBinary, dataDir, port: config.cluster.localNatsPort, log })
    : undefined;
  const natsUrl = configured ?? nats!.url;
  const plans = planWorkers(config, count, machineId, natsUrl);
  return new Supervisor(plans, nats, config.shutdown.graceSeconds, log).run();
}

class Supervisor {
  private readonly slots: Slot[];
  private stopping = false;
  private started = false;
  private finish: (code: number) => void = () => undefined;
  private exitCode = 0;

  constructor(
    plans: WorkerPlan[],
    private readonly nats: LocalNatsServer | undefined,
    private readonly graceSeconds: number,
    private readonly log: Logger,
  ) {
    this.slots = plans.map((plan) => ({
      plan,
      worker: undefined,
      startedAt: 0,
      failures: 0,
      restartTimer: undefined,
      listening: false,
    }));
  }

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    process.on('SIGTERM', () => this.stop('SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT'));
    for (const slot of this.slots) this.fork(slot);
    return done;
  }

  private fork(slot: Slot): void {
    const worker = cluster.fork(slot.plan.env);
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.listening = false;
    const { index, nodeId, udpPort } = slot.plan;
    this.log.info({ index, nodeId, pid: worker.process.pid, udpPort }, 'worker started');
    worker.on('message', (msg: unknown) => {
      const parsed = workerListening.safeParse(msg);
      if (!parsed.success) {
        this.log.warn({ index, nodeId }, 'worker sent an unknown message; ignored');
        return;
      }
      slot.listening = true;
      this.log.info({ index, nodeId, pid: worker.process.pid }, 'worker listening');
      if (!this.started && this.slots.every((s) => s.listening)) {
        this.started = true;
        this.log.info(
          {
            http: parsed.data.http,
            https: parsed.data.https,
            processes: this.slots.length,
            nats: this.nats?.url,
          },
          'chorus processes listening',
        );
      }
    });
    // An IPC or spawn error ends in 'exit' too; only say it here.
    worker.on('error', (err) => this.log.warn({ err, index, nodeId }, 'worker error'));
    worker.once('exit', (code, signal) => this.onExit(slot, worker, code, signal));
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker === worker) slot.worker = undefined;
    const { index, nodeId } = slot.plan;
    const fields = { index, nodeId, pid: worker.process.pid, code, signal };
    if (this.stopping) {
      // Our SIGTERM ending a worker before it had its handler (still starting) is a clean stop too.
      const clean = code === 0 || (code === null && signal === 'SIGTERM');
      if (!clean && this.exitCode === 0) this.exitCode = 1;
      this.log.info(fields, 'worker exited');
      if (this.slots.every((s) => !s.worker)) void this.finishStop();
      return;
    }
    if (!this.started) {
      // Failing at start is the operator's to fix (its one line is already on stderr):
      // retrying would only repeat it. Same exit code as a single process: 2 for a setting.
      this.log.error(fields, 'worker failed at start; stopping');
      this.exitCode = code === 2 ? 2 : 1;
      this.stop('worker failed at start');
      return;
    }
    if (Date.now() - slot.startedAt >= HEALTHY_AFTER_MS) slot.failures = 0;
    const delay = Math.min(RESTART_MS.first * 2 ** slot.failures, RESTART_MS.max);
    slot.failures++;
    this.log.error({ ...fields, restartInMs: delay }, 'worker died; restarting');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping) this.fork(slot);
    }, delay);
  }

  /** Each worker drains (its own SIGTERM handling, drain-gate.ts) and exits; then NATS stops. */
  private stop(why: string): void {
    if (this.stopping) {
      if (why === 'SIGTERM' || why === 'SIGINT') {
        this.log.warn({ signal: why }, 'second signal: killing the workers now');
        this.exitCode = 1;
        for (const s of this.slots) s.worker?.process.kill('SIGKILL');
      }
      return;
    }
    this.stopping = true;
    this.log.info({ reason: why, graceSeconds: this.graceSeconds }, 'stopping the workers');
    for (const s of this.slots) {
      clearTimeout(s.restartTimer);
      s.restartTimer = undefined;
      // SIGTERM rather than cluster's disconnect(): the worker's own drain runs as in a single process.
      s.worker?.process.kill('SIGTERM');
    }
    const deadline = setTimeout(
      () => {
        this.log.error('workers did not stop within the grace; killing them');
        this.exitCode = 1;
        for (const s of this.slots) s.worker?.process.kill('SIGKILL');
      },
      this.graceSeconds * 1000 + STOP_SLACK_MS,
    );
    deadline.unref();
    if (this.slots.every((s) => !s.worker)) void this.finishStop();
  }

  private finishing = false;

  private async finishStop(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    try {
      await this.nats?.stop();
    } catch (err) {
      this.log.error({ err }, 'nats-server did not stop');
      this.exitCode = 1;
    }
    this.log.info({ code: this.exitCode }, 'all processes stopped');
    this.finish(this.exitCode);
  }
}
