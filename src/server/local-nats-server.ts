import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import { StartupError } from './startup-error.js';

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** Restarts of a nats-server that died on its own: 1 s doubling to 30 s. */
const RESTART_MS = { first: 1000, max: 30_000 };
/** nats-server prints the port it took, which is how `-p -1` (a free port) is learned. */
const LISTENING = /Listening for client connections on [^\s]+:(\d+)/;

/** The executable `name` in one of PATH's directories, or undefined. */
export function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The nats-server `chorus serve --processes N` starts for its workers when no
 * CLUSTER_NATS_URL is set: JetStream on, its store in `<DATA_DIR>/nats` (so records
 * outlive a restart, as LMDB's do for one process), on 127.0.0.1 only. Its log lines go
 * to stderr prefixed `[nats-server]`. Should it die, it is started again on the same port
 * (the workers reconnect by themselves); `stop` ends it for good.
 */
export class LocalNatsServer {
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  private constructor(
    private readonly binary: string,
    private readonly storeDir: string,
    private port: number,
    private readonly log: Logger,
  ) {}

  /** Starts it and resolves once it accepts clients; a failure is a StartupError (one line, exit 2). */
  static async start(opts: {
    binary: string;
    dataDir: string;
    port: number;
    log: Logger;
  }): Promise<LocalNatsServer> {
    const storeDir = join(opts.dataDir, 'nats');
    try {
      mkdirSync(storeDir, { recursive: true });
    } catch (err) {
      throw new StartupError(
        `cannot create ${storeDir} for nats-server's store: ${String(err)}; set DATA_DIR`,
        {
          cause: err,
        },
      );
    }
    await stopLeftOver(storeDir, opts.log);
    const server = new LocalNatsServer(opts.binary, storeDir, opts.port, opts.log);
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private launch(): Promise<void> {
    const args = [
      '-a',
      '127.0.0.1',
      '-p',
      this.port === 0 ? '-1' : String(this.port),
      '-js',
      '-sd',
      this.storeDir,
    ];
    // Its own process group: a Ctrl-C in the terminal reaches the whole foreground group, and
    // NATS must outlive the workers' drain (they leave the membership through it); `stop` ends it.
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    try {
      if (child.pid !== undefined) writeFileSync(join(this.storeDir, PID_FILE), `${child.pid}\n`);
    } catch (err) {
      this.log.warn({ err }, 'cannot write the nats-server pid file');
    }
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      let last = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new StartupError(`nats-server did not become ready within ${START_TIMEOUT_MS / 1000} s: ${last}`),
        );
      }, START_TIMEOUT_MS);
      let pending = '';
      const onData = (chunk: Buffer): void => {
        pending += chunk.toString();
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          process.stderr.write(`[nats-server] ${line}\n`);
          last = line;
          const m = LISTENING.exec(line);
          if (m) this.port = Number(m[1]);
          if (!ready && line.includes('Server is ready')) {
            ready = true;
            clearTimeout(timer);
            this.log.info({ pid: child.pid, url: this.url, storeDir: this.storeDir }, 'nats-server started');
            resolve();
          }
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new StartupError(`cannot run nats-server (${this.binary}): ${err.message}`, { cause: err }));
      });
      child.once('exit', (code, signal) => {
        if (!ready) {
          clearTimeout(timer);
          reject(new StartupError(`nats-server exited (${code ?? signal}) before it was ready: ${last}`));
          return;
        }
        if (this.child === child) this.child = undefined;
        if (!this.stopped) this.restartLater(code ?? signal);
      });
    });
  }

  private restartLater(why: number | string | null): void {
    const delay = Math.min(RESTART_MS.first * 2 ** this.failures, RESTART_MS.max);
    this.failures++;
    this.log.error({ exit: why, restartInMs: delay }, 'nats-server died; starting it again');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.launch().then(
        () => (this.failures = 0),
        (err: unknown) => {
          this.log.error({ err }, 'nats-server did not start again');
          if (!this.stopped) this.restartLater('start failed');
        },
      );
    }, delay);
  }

  /** SIGTERM (JetStream flushes its store), SIGKILL after 5 s; resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
    this.log.info('nats-server stopped');
  }
}

const PID_FILE = 'nats-server.pid';

/** `/proc/<pid>/cmdline` as one string ('' when unreadable: gone, or not Linux). */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * A supervisor killed with SIGKILL cannot stop its nats-server, which then keeps running
 * on the store. The next start finds it through the pid file: if its parent is still a
 * Chorus (another supervisor on this DATA_DIR) that is a mistake to refuse; otherwise it
 * was left behind and is stopped, so two servers never write one store.
 */
async function stopLeftOver(storeDir: string, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(storeDir, PID_FILE), 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  const cmd = commandLine(pid);
  if (!cmd.includes('nats-server') || !cmd.includes(storeDir)) return;
  const parent = parentOf(pid);
  if (parent !== undefined && /main\.(js|ts)\b/.test(commandLine(parent))) {
    throw new StartupError(
      `another chorus --processes (pid ${parent}) runs on this DATA_DIR (its nats-server, pid ${pid}, uses ${storeDir}): stop it or set another DATA_DIR`,
    );
  }
  log.warn({ pid }, 'stopping the nats-server that a killed supervisor left on this DATA_DIR');
  const gone = (): boolean => commandLine(pid) === '' || !commandLine(pid).includes('nats-server');
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (!gone()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    while (!gone() && Date.now() < deadline + STOP_TIMEOUT_MS) await new Promise((r) => setTimeout(r, 50));
  }
}
