// Starts Chorus as its own process for a benchmark and reads its CPU and memory from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface BenchServer {
  child: ChildProcess;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * How the server is started: from source through tsx (the default), or as production
 * starts it, a built `dist/src/main.js` (see `npm run build`) with the Dockerfile's flags.
 */
export interface BenchServerStart {
  /** A built entry (`DIST/src/main.js`); absent: `src/main.ts` through tsx. */
  main?: string;
  /** Node flags before the entry (the production ones); BENCH_NODE_ARGS come after. */
  nodeArgs?: string[];
  /** The path that answers 200 once the server is up (Chorus's `/readyz` by default). */
  readyPath?: string;
}

export async function startBenchServer(
  env: Record<string, string>,
  start: BenchServerStart = {},
): Promise<BenchServer> {
  const port = await freePort();
  // BENCH_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, to profile the server.
  const nodeArgs = [
    ...(start.nodeArgs ?? []),
    ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const entry = start.main ? [start.main] : ['--import', 'tsx', 'src/main.ts'];
  const child = spawn(process.execPath, [...nodeArgs, ...entry, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      HTTP_PORT: String(port),
      BIND_ADDRESS: '127.0.0.1',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'chorus-bench-')),
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'no',
      // Every load generator connects from this one address: the per-address limits
      // meant for strangers (#11) would refuse the load itself.
      HTTP_MAX_CONNECTIONS_PER_IP: '0',
      SIGNAL_REGISTER_RATE_PER_MINUTE: '0',
      SIGNAL_MAX_NAMES_PER_IP_PER_DAY: '0',
      BLUESKY_ROOM_CREATE_RATE_PER_MINUTE: '0',
      BLUESKY_MAX_OPEN_ROOMS_PER_IP: '0',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  // Generous: on a shared 2-core box under load, tsx's compile and a cluster join take long.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}${start.readyPath ?? '/readyz'}`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL'); // not left running once the bench gives up on it
      throw new Error('server did not become ready');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Resident memory of a process in bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** CPU seconds split into user and system (kernel) time. */
export function cpuSplit(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * p99 and max (ms) of Chorus's event-loop delay from a `/metrics` text: since the scrape
 * before it, as each scrape starts the server's histogram afresh.
 */
export function eventLoopLag(metrics: string): { p99: number; max: number } {
  const read = (name: string): number =>
    Number(
      (
        Number(new RegExp(`^chorus_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(metrics)?.[1]) *
        1000
      ).toFixed(1),
    );
  return { p99: read('p99'), max: read('max') };
}
