// What bench/stream's runs share: receiver worker processes, the paced publisher, and
// latency probes that read the send time stamped into each chunk.
import { fork, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';

export interface WorkerReport {
  type: string;
  bytes: number;
  open: number;
  closed: number;
}

/** Waits for a worker's message of `type` ('report' is asked for first). */
export function ask(w: ChildProcess, type: string): Promise<WorkerReport> {
  return new Promise((resolve) => {
    const on = (m: WorkerReport): void => {
      if (m.type === type) {
        w.off('message', on);
        resolve(m);
      }
    };
    w.on('message', on);
    if (type === 'report') w.send({ type });
  });
}

/** `count` receivers of `path` on the server at `url`, spread over `workers` processes, all connected. */
export async function startReceivers(
  url: string,
  path: string,
  count: number,
  workers: number,
): Promise<ChildProcess[]> {
  const { hostname, port } = new URL(url);
  const started: ChildProcess[] = [];
  const per = Math.ceil(count / workers);
  for (let i = 0, left = count; i < workers && left > 0; i++, left -= per) {
    started.push(
      fork(
        new URL('./receivers.ts', import.meta.url).pathname,
        [hostname, port, path, String(Math.min(per, left))],
        { execArgv: ['--import', 'tsx'] },
      ),
    );
  }
  await Promise.all(started.map((w) => ask(w, 'ready')));
  return started;
}

/** Bytes the workers have received so far, summed. */
export async function receivedBytes(workers: ChildProcess[]): Promise<number> {
  const reports = await Promise.all(workers.map((w) => ask(w, 'report')));
  return reports.reduce((s, r) => s + r.bytes, 0);
}

export function stopReceivers(workers: ChildProcess[]): void {
  for (const w of workers) w.send({ type: 'exit' });
}

export function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/**
 * Publishes `chunk`-byte chunks at `mbps` for `seconds`, each stamped with its number
 * (bytes 0-3) and its send time (performance.now(), bytes 4-11) for the latency probes.
 * `onTick` runs on every turn of the pacing loop.
 */
export async function publishAtRate(
  pub: WebSocket,
  opts: { mbps: number; chunk: number; seconds: number; onTick?: (elapsedMs: number) => void },
): Promise<{ sent: number; elapsed: number }> {
  const interval = ((opts.chunk * 8) / (opts.mbps * 1e6)) * 1000;
  const base = Buffer.alloc(opts.chunk, 0x5a);
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now() - t0;
      opts.onTick?.(now);
      const due = Math.floor(now / interval);
      while (sent < due) {
        const c = Buffer.from(base);
        c.writeUInt32BE(sent, 0);
        c.writeDoubleBE(performance.now(), 4);
        pub.send(c, { binary: true });
        sent++;
      }
      if (now >= opts.seconds * 1000) resolve();
      else setTimeout(tick, Math.max(1, interval / 2));
    };
    tick();
  });
  return { sent, elapsed: (performance.now() - t0) / 1000 };
}

/** A receiver in this process that records each chunk's delay from its stamped send time. */
export async function latencyProbe(url: string): Promise<{ delaysMs: number[]; close(): void }> {
  const ws = await openSocket(url);
  const delaysMs: number[] = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary && (data as Buffer).length >= 12)
      delaysMs.push(performance.now() - (data as Buffer).readDoubleBE(4));
  });
  return { delaysMs, close: () => ws.terminate() };
}
