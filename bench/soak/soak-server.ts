// The Chorus process under soak: started like the other benches' server (bench/lib), but
// with its log piped so that warn/error lines can be counted per round instead of
// scrolling past, and stopped by PID with a SIGKILL fallback so a hung shutdown cannot
// leave it running.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { freePort, rssBytes } from '../lib/server-process.js';

/** Server log lines by pino level, since the last `take()`. */
export class LogTally {
  warn = 0;
  error = 0;
  fatal = 0;
  /** Distinct messages at error level or above, with counts (bounded). */
  readonly errors = new Map<string, number>();
  /** Distinct warn messages, with counts (bounded). */
  readonly warnings = new Map<string, number>();

  add(line: string): void {
    // The inspector's own banner (see `collectGarbage`), not the server's.
    if (/^(Debugger listening on|For help, see|Debugger attached|Debugger ending on)/.test(line)) return;
    let entry: { level?: number; msg?: string; err?: { message?: string } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      // Not pino JSON: something printed by the runtime or a native library.
      this.error++;
      bump(this.errors, `(raw) ${line.slice(0, 160)}`);
      return;
    }
    const level = entry.level ?? 30;
    const text = `${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`.slice(0, 160);
    if (level >= 60) this.fatal++;
    else if (level >= 50) this.error++;
    else if (level >= 40) this.warn++;
    if (level >= 50) bump(this.errors, text);
    else if (level >= 40) bump(this.warnings, text);
  }

  take(): { warn: number; error: number; fatal: number; errors: string[]; warnings: string[] } {
    const out = {
      warn: this.warn,
      error: this.error,
      fatal: this.fatal,
      errors: [...this.errors].map(([m, n]) => `${n} x ${m}`),
      warnings: [...this.warnings].map(([m, n]) => `${n} x ${m}`),
    };
    this.warn = this.error = this.fatal = 0;
    this.errors.clear();
    this.warnings.clear();
    return out;
  }
}

function bump(map: Map<string, number>, key: string): void {
  if (map.has(key) || map.size < 20) map.set(key, (map.get(key) ?? 0) + 1);
}

export interface SoakServer {
  url: string;
  pid: number;
  child: ChildProcess;
  log: LogTally;
  /**
   * A full garbage collection in the server, through its inspector (started on
   * 127.0.0.1 for this): what is left on the heap afterwards is live, so heap growth
   * round after round is a leak, not garbage not yet collected.
   */
  collectGarbage(): Promise<void>;
  /** Set when the process has exited (it should not, before `stop`). */
  exited: () => string | undefined;
  stop(): Promise<void>;
}

export async function startSoakServer(env: Record<string, string>): Promise<SoakServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'chorus-soak-'));
  const child = spawn(
    process.execPath,
    ['--inspect=127.0.0.1:0', '--import', 'tsx', 'src/main.ts', 'serve'],
    {
      env: {
        PATH: process.env.PATH ?? '',
        HTTP_PORT: String(port),
        BIND_ADDRESS: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        LOG_PRETTY: 'no',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const log = new LogTally();
  let inspectorUrl: string | undefined;
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream }).on('line', (l) => {
      inspectorUrl ??= /^Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1];
      log.add(l);
    });
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = `exited with ${signal ?? code}`));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (exit === undefined) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exit !== undefined) throw new Error(`server ${exit} before it was ready`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('server did not become ready within 30 s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const collectGarbage = async (): Promise<void> => {
    if (!inspectorUrl) throw new Error('the server did not announce its inspector');
    await inspect(inspectorUrl, 'HeapProfiler.collectGarbage');
  };
  return { url, pid: child.pid!, child, log, exited: () => exit, stop, collectGarbage };
}

/** Sends one inspector (Chrome DevTools protocol) command and waits for its answer. */
function inspect(wsUrl: string, method: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false, handshakeTimeout: 15_000 });
    const timer = setTimeout(() => done(new Error(`inspector: no answer to ${method} in 60 s`)), 60_000);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      ws.terminate();
      if (err) reject(err);
      else resolve();
    };
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, method })));
    ws.on('message', (data: WebSocket.RawData) => {
      const m = JSON.parse((data as Buffer).toString()) as { id?: number; error?: { message: string } };
      if (m.id === 1) done(m.error ? new Error(`inspector: ${m.error.message}`) : undefined);
    });
    ws.once('error', (err) => done(err));
  });
}

/** Open file descriptors of a process. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export { rssBytes };
