#!/usr/bin/env node
// First: holds V8's young generation at its initial size while the server is built (see the file).
import './lib/young-generation.js';
// Second: Maglev and TurboFan off while the server is built (see the file).
import { releaseOptimizingCompilers } from './lib/optimizing-compilers.js';
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load-config.js';
import { StartupError } from './server/startup-error.js';
import { installProcessGuard } from './server/process-guard.js';
import { createLogger } from './server/logger.js';
import type { WorkerListening } from './server/process-supervisor.js';
import type { ChorusServer as Server } from './server/create-server.js';
import type { Config } from './config/schema.js';
import { processCount } from './server/worker-plan.js';

const USAGE = `usage: chorus [serve] [--config FILE] [--env-file FILE] [--processes N|auto]
       chorus voip sign [--server URL] [--key FILE]
       chorus token create --room R --identity I [...]   (chorus token --help)
       chorus rooms list|close NAME [--url URL]          (chorus rooms --help)
       chorus load-test [--url URL] [--publishers N] [...] (chorus load-test --help)

  serve            run the server (the default)
  --config FILE    JSON or YAML settings (see the README's config table)
  --env-file FILE  dotenv file to read (default: ./.env when present)
  --processes N    run N Chorus processes sharing the HTTP port, one cluster node each,
                   over CLUSTER_NATS_URL or a nats-server started for them; auto: one
                   per core (CHORUS_PROCESSES; default 1; see docs/cluster.md)

  voip sign        print ME (a VOIP key's id) and SIG (its signature of a fresh server
                   ticket) as shell variables, for docs/voip.md's curl and ffmpeg examples:
                   eval "$(chorus voip sign)"
  --server URL     the Chorus server (default http://127.0.0.1:8000, plus VOIP_PREFIX)
  --key FILE       the private key, made there on first use (default ./.chorus-voip-key)

Precedence, lowest to highest: defaults, --config file, .env file, environment.`;

async function main(): Promise<number> {
  // `chorus token ...`, `chorus rooms ...` (the native API, docs/native-api.md) parse their own options.
  const sub = process.argv[2];
  // Only `serve` builds a server (which releases them once its surfaces are mounted): the
  // other commands, and a supervisor of --processes, run with the optimizing compilers on.
  if (sub === 'token' || sub === 'rooms' || sub === 'load-test') releaseOptimizingCompilers();
  if (sub === 'token' || sub === 'rooms') {
    const { nativeCli } = await import('./api/chorus/native-cli.js');
    return nativeCli(sub, process.argv.slice(3));
  }
  if (sub === 'load-test') {
    const { loadTestCli } = await import('./api/chorus/load-test.js');
    return loadTestCli(process.argv.slice(3));
  }
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'env-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      server: { type: 'string' },
      key: { type: 'string' },
      processes: { type: 'string' },
    },
  });
  const command = positionals[0] ?? 'serve';
  if (command === 'voip' && positionals[1] === 'sign' && !values.help) {
    releaseOptimizingCompilers();
    return voipSign(values.server ?? 'http://127.0.0.1:8000', values.key ?? '.chorus-voip-key');
  }
  if (values.help || command !== 'serve') {
    process.stdout.write(USAGE + '\n');
    return values.help ? 0 : 2;
  }

  let config;
  try {
    config = loadConfig({
      // --processes is CHORUS_PROCESSES given on the command line (it wins, as the environment does).
      env:
        values.processes === undefined ? process.env : { ...process.env, CHORUS_PROCESSES: values.processes },
      dotenvPath: values['env-file'] ?? '.env',
      ...(values.config ? { configFile: values.config } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chorus: invalid configuration\n${err.lines.map((l) => `  ${l}`).join('\n')}\n`);
      return 2;
    }
    throw err;
  }

  // A worker is a plain single node (its plan set CHORUS_PROCESSES=1 and its own node settings).
  const processes = cluster.isWorker ? 1 : processCount(config.cluster.processes);
  if (processes > 1) {
    releaseOptimizingCompilers();
    try {
      // Loaded only here, and the server only below: a supervisor never loads the server
      // (its RSS under tsx 126 -> 107 MB), a single process never loads the supervisor.
      const { superviseProcesses } = await import('./server/process-supervisor.js');
      return await superviseProcesses(
        config,
        processes,
        createLogger(config.log).child({ supervisor: true }),
      );
    } catch (err) {
      return startupFailed(err);
    }
  }

  let server;
  try {
    // A worker's lines share the supervisor's stdout: each carries the worker's node id.
    const worker = cluster.isWorker
      ? { logger: createLogger(config.log).child({ worker: config.cluster.nodeId }) }
      : {};
    const { createServer } = await import('./server/create-server.js');
    server = await createServer(config, worker);
  } catch (err) {
    return startupFailed(err);
  }
  installStopHandlers(server, config);
  try {
    await server.listen();
  } catch (err) {
    return startupFailed(err);
  }
  if (cluster.isWorker) {
    const { http, https } = server.urls();
    const listening: WorkerListening = { chorus: 'listening', http, ...(https ? { https } : {}) };
    process.send?.(listening);
  }
  return -1;
}

/**
 * SIGTERM/SIGINT drain then close; the process guard (an uncaught exception) closes
 * without draining and exits 1. A hung close cannot keep the process alive.
 */
function installStopHandlers(server: Server, config: Config): void {
  const log = server.app.log;
  let stopping = false;
  let exitCode = 0; // 1 once an uncaught exception has started the drain
  // A signal drains first (running calls get the grace); a broken process (the guard) does not wait.
  const stop = (signal: string, drainFirst = true): void => {
    if (stopping) {
      // A worker of --processes gets SIGTERM twice when the whole group is signalled (systemd,
      // `kill -- -PGID`): once itself, once from the supervisor; the supervisor decides when to kill.
      if (cluster.isWorker) return;
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, graceSeconds: config.shutdown.graceSeconds }, 'draining');
    // The grace bounds the drain; the close after it takes 2 s at most for the sockets'
    // 1001 (create-server.ts), plus the listeners and ports. A hung close must not keep
    // the process alive.
    const deadline = setTimeout(
      () => {
        log.error('shutdown grace exceeded; exiting');
        process.exit(1);
      },
      config.shutdown.graceSeconds * 1000 + 5000,
    );
    deadline.unref();
    (drainFirst ? server.drain() : Promise.resolve())
      .then(() => server.close())
      .then(
        () => process.exit(exitCode),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A worker of --processes: Ctrl-C reaches the whole process group, and the supervisor
  // turns it into the SIGTERM that drains each worker; acting on both would be a "second signal".
  process.on('SIGINT', () => (cluster.isWorker ? undefined : stop('SIGINT')));
  installProcessGuard({
    log,
    registry: server.metrics.registry,
    drainAndExit: (why) => {
      exitCode = 1;
      if (!stopping) stop(why, false); // already draining on a signal: that drain now ends in 1
    },
  });
}

/** `chorus voip sign`: `ME=... SIG=...` lines a shell can eval; exit 1 with one line on failure. */
async function voipSign(server: string, keyFile: string): Promise<number> {
  try {
    // Loaded here, not at the top: `serve` without VOIP must not load VOIP's modules.
    const { loadOrCreateKey, signedTicket } = await import('./api/voip/ticket-signer.js');
    const { me, sig } = await signedTicket(server, loadOrCreateKey(keyFile));
    process.stdout.write(`ME=${me}\nSIG=${sig}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`chorus voip sign: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** A failure the operator can fix (port in use, unusable DATA_DIR) is one line and exit 2. */
function startupFailed(err: unknown): number {
  if (!(err instanceof StartupError)) throw err;
  process.stderr.write(`chorus: ${err.message}\n`);
  return 2;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(
      `chorus: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
