import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDistInTemp, removeDistBuild } from '../fixtures/dist-build.js';
import { freeUdpPort } from '../fixtures/free-udp-port.js';
import { hasTool } from '../fixtures/system-tools.js';
import { eventually } from '../fixtures/ws-client.js';

/** V8's --trace-opt line for a function it decided to optimize, or finished optimizing. */
const OPTIMIZING = /^\[(marking|completed compiling) .*(MAGLEV|TURBOFAN)/;
const LOGGED = /^\{"level":/;
const MOUNTED = /"msg":"surface mounted"/;
const LISTENING = /"http":"(http:\/\/[^"]+)".*"msg":"chorus listening"/;

interface Traced {
  child: ChildProcess;
  exited: Promise<number | null>;
  url: string;
  /** stdout, line by line: pino's JSON lines and V8's --trace-opt lines, in the order written. */
  lines: () => string[];
}

/**
 * The production build with every surface on, under `--trace-opt` (lib/optimizing-compilers.ts,
 * #17.2). V8 prints its trace with printf, pino writes the log lines itself: `stdbuf -oL`
 * makes the trace line-buffered too, so both reach the pipe in the order they were made.
 */
describe.runIf(hasTool('stdbuf', 'coreutils'))(
  'production build: no optimizing compiler while the server is built',
  () => {
    let app: string;
    const started: Traced[] = [];

    beforeAll(async () => {
      app = await buildDistInTemp('chorus-compilers-');
    }, 300_000);
    afterAll(() => removeDistBuild(app, started));

    async function start(name: string, nodeArgs: string[] = []): Promise<Traced> {
      const child = spawn(
        'stdbuf',
        ['-oL', process.execPath, ...nodeArgs, '--trace-opt', join(app, 'dist/src/main.js'), 'serve'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            HTTP_PORT: '0',
            BIND_ADDRESS: '127.0.0.1',
            WEBRTC_UDP_PORT: String(await freeUdpPort()),
            DATA_DIR: join(app, name),
            LOG_LEVEL: 'info',
            LOG_PRETTY: 'no',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const s: Traced = { child, exited, url: '', lines: () => out.split('\n') };
      started.push(s);
      await eventually(() => LISTENING.test(out) || child.exitCode !== null, 60_000, `${name} listening`);
      s.url = LISTENING.exec(out)?.[1] ?? '';
      expect(s.url, out).not.toBe('');
      return s;
    }

    /** The trace lines of functions V8 optimized after the server said it was listening. */
    const optimizedAfterListening = (s: Traced): string[] => {
      const lines = s.lines();
      return lines.slice(lines.findIndex((l) => LISTENING.test(l))).filter((l) => OPTIMIZING.test(l));
    };

    /** The same 200 requests to each server: the kind of work that gets hot under real use. */
    async function load(...servers: Traced[]): Promise<void> {
      for (let i = 0; i < 200; i++) {
        for (const s of servers) await (await fetch(`${s.url}/healthz`)).text();
      }
    }

    async function stop(s: Traced): Promise<void> {
      process.kill(s.child.pid!, 'SIGTERM');
      expect(await s.exited).toBe(0);
    }

    it('optimizes nothing from its first log line to its last surface mounted, then what requests make hot', async () => {
      const s = await start('default');
      const lines = s.lines();
      const from = lines.findIndex((l) => LOGGED.test(l));
      const to = lines.findLastIndex((l) => MOUNTED.test(l));
      // Six surfaces mounted after the first line: the window is the server being built.
      expect(lines.slice(from, to + 1).filter((l) => MOUNTED.test(l))).toHaveLength(6);
      expect(lines.slice(from, to + 1).filter((l) => OPTIMIZING.test(l))).toEqual([]);
      // Released once mounted: requests get handled by optimized code again.
      await eventually(
        async () => {
          await load(s);
          return optimizedAfterListening(s).length > 0;
        },
        90_000,
        'a function optimized under requests',
      );
      await stop(s);
    }, 240_000);

    it("leaves the operator's compiler flags as given: --no-maglev --no-turbofan stays without them", async () => {
      const given = await start('flags', ['--no-maglev', '--no-turbofan']);
      const plain = await start('plain');
      // The same requests to both until the plain server optimizes something.
      await eventually(
        async () => {
          await load(plain, given);
          return optimizedAfterListening(plain).length > 0;
        },
        90_000,
        'a function optimized under requests',
      );
      expect(optimizedAfterListening(given)).toEqual([]);
      await stop(given);
      await stop(plain);
    }, 240_000);
  },
);
