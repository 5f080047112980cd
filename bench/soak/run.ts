// bench/soak: churn soak. Starts one Chorus process and, in rounds, connects and drops
// Signal sockets, Blue Sky SFU legs and VOIP listeners, all at once. After each round it
// waits for the server's own gauges (/metrics) to come back to idle, then records the
// server's RSS and open file descriptors (/proc/<pid>). Growth round after round, or
// gauges that stay above zero, is a leak. Not a timed test: run it by hand.
//
//   npm run bench:soak -- [--rounds 3] [--signal 5000] [--legs 500] [--listeners 1000]
//     [--legs-per-room 10] [--room-size 50] [--workers 3] [--messages 3] [--hold 3]
//     [--settle-timeout 120] [--env KEY=VALUE ...]
//
// A small run: npm run bench:soak -- --signal 200 --legs 20 --listeners 50 --rounds 2
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { awaitIdle, readGauges, stillOpen, type GaugeReading } from './idle-gauges.js';
import { SfuChurn, type SfuRound } from './sfu-churn.js';
import { SignalChurn, type SignalRound, type SignalCookies } from './signal-churn.js';
import { openFds, rssBytes, startSoakServer, type SoakServer } from './soak-server.js';
import { freeUdpPort } from '../../test/fixtures/free-udp-port.js';
import { VoipChurn, type VoipRound } from './voip-churn.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    signal: { type: 'string', default: '5000' },
    legs: { type: 'string', default: '500' },
    listeners: { type: 'string', default: '1000' },
    'legs-per-room': { type: 'string', default: '10' },
    'room-size': { type: 'string', default: '50' },
    workers: { type: 'string', default: '3' },
    messages: { type: 'string', default: '3' },
    hold: { type: 'string', default: '3' },
    'settle-timeout': { type: 'string', default: '120' },
    env: { type: 'string', multiple: true, default: [] },
  },
});

function count(name: keyof typeof values, min: number): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: an integer >= ${min}`);
  return n;
}
const ROUNDS = count('rounds', 1);
const SIGNAL = count('signal', 0);
const LEGS = count('legs', 0);
const LISTENERS = count('listeners', 0);
const LEGS_PER_ROOM = count('legs-per-room', 2);
const ROOM_SIZE = count('room-size', 1);
const WORKERS = count('workers', 1);
const MESSAGES = count('messages', 1);
const HOLD_SECONDS = count('hold', 0);
const SETTLE_SECONDS = count('settle-timeout', 1);
/** Extra server settings, e.g. `--env SIGNAL_RATE_LIMIT=1000` (they win over the soak's). */
const EXTRA_ENV = Object.fromEntries(
  values.env.map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--env ${kv}: KEY=VALUE expected`);
    return [kv.slice(0, i), kv.slice(i + 1)];
  }),
);

interface Row {
  round: string;
  rssMiB: number;
  fds: number;
  heapMiB: number;
  settleSeconds: number;
  idle: boolean;
  fdsStable: boolean;
  stillOpen: string[];
  signal?: SignalRound;
  sfu?: SfuRound;
  voip?: VoipRound;
  serverLog: ReturnType<SoakServer['log']['take']>;
}

type Settled = { reading: GaugeReading; seconds: number; idle: boolean; fdsStable: boolean };

const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;

function measure(server: SoakServer, round: string, settled: Settled): Row {
  return {
    round,
    rssMiB: mib(rssBytes(server.pid)),
    fds: openFds(server.pid),
    heapMiB: mib(settled.reading.heapUsedBytes),
    settleSeconds: Math.round(settled.seconds * 10) / 10,
    idle: settled.idle,
    fdsStable: settled.fdsStable,
    stillOpen: stillOpen(settled.reading),
    serverLog: server.log.take(),
  };
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

function alive(server: SoakServer): void {
  const exit = server.exited();
  if (exit) throw new Error(`the server ${exit}`);
}

function settledText(r: Row): string {
  if (!r.idle) return `NO: ${r.stillOpen.join(', ') || 'event loop busy'}`;
  return r.fdsStable ? 'yes' : 'gauges yes, fds still changing';
}

function printTables(rows: Row[]): void {
  const base = rows[0]!;
  const pad = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |`;
  console.log('\nServer after each round (settled: its gauges back to idle; heap after a full GC)\n');
  console.log(pad(['round', 'RSS MiB', 'Δ RSS', 'fds', 'Δ fds', 'heap MiB', 'settle s', 'idle']));
  console.log(pad(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---']));
  for (const r of rows)
    console.log(
      pad([
        r.round,
        r.rssMiB,
        (r.rssMiB - base.rssMiB).toFixed(1),
        r.fds,
        r.fds - base.fds,
        r.heapMiB,
        r.settleSeconds,
        settledText(r),
      ]),
    );
  console.log('\nClients per round (connected/attempted)\n');
  console.log(
    pad([
      'round',
      'signal',
      'messages',
      'sfu legs',
      'sfu 503 retried',
      'no media',
      'voip',
      'failures',
      'server warn/error',
    ]),
  );
  console.log(pad(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
  for (const r of rows.slice(1)) {
    const failures =
      (r.signal?.failures.total ?? 0) + (r.sfu?.failures.total ?? 0) + (r.voip?.failures.total ?? 0);
    console.log(
      pad([
        r.round,
        `${r.signal?.connected ?? 0}/${r.signal?.attempted ?? 0}`,
        `${r.signal?.messagesDelivered ?? 0}/${r.signal?.messagesExpected ?? 0}`,
        `${r.sfu?.connected ?? 0}/${r.sfu?.attempted ?? 0}`,
        r.sfu?.refused ?? 0,
        r.sfu?.noMedia ?? 0,
        `${r.voip?.connected ?? 0}/${r.voip?.attempted ?? 0}`,
        failures,
        `${r.serverLog.warn}/${r.serverLog.error + r.serverLog.fatal}`,
      ]),
    );
  }
  for (const r of rows) {
    const kinds = {
      ...(r.signal?.failures.total ? { signal: r.signal.failures.toJSON() } : {}),
      ...(r.sfu?.failures.total ? { sfu: r.sfu.failures.toJSON() } : {}),
      ...(r.voip?.failures.total ? { voip: r.voip.failures.toJSON() } : {}),
    };
    if (Object.keys(kinds).length)
      console.log(`\nround ${r.round} client failures: ${JSON.stringify(kinds)}`);
    if (r.serverLog.errors.length)
      console.log(`round ${r.round} server errors: ${r.serverLog.errors.join('; ')}`);
    if (r.serverLog.warnings.length)
      console.log(`round ${r.round} server warnings: ${r.serverLog.warnings.join('; ')}`);
  }
}

const header = {
  machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  node: process.version,
  commit: commit(),
  rounds: ROUNDS,
  signalSockets: SIGNAL,
  sfuLegs: LEGS,
  legsPerRoom: LEGS_PER_ROOM,
  voipListeners: LISTENERS,
  voipRoomSize: ROOM_SIZE,
  holdSeconds: HOLD_SECONDS,
  env: EXTRA_ENV,
};
console.log(JSON.stringify(header));

let server: SoakServer | undefined;
let sfu: SfuChurn | undefined;
let stopping = false;
const rows: Row[] = [];
const cleanup = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  sfu?.killAll();
  await server?.stop();
};
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    console.error(`\n${sig}: stopping the server and workers`);
    void cleanup().finally(() => {
      if (rows.length > 0) printTables(rows);
      process.exit(130);
    });
  });

let failed = false;
try {
  const srv = await startSoakServer({
    WEBRTC_UDP_PORT: String(await freeUdpPort()),
    WEBRTC_BIND_ADDRESS: '127.0.0.1',
    // Every simulated user comes from 127.0.0.1, so the per-client-address limits would
    // refuse all but the first few hundred: lifted, everything else at its default.
    HTTP_MAX_CONNECTIONS_PER_IP: '0',
    SIGNAL_REGISTER_RATE_PER_MINUTE: '0',
    SIGNAL_MAX_NAMES_PER_IP_PER_DAY: '0',
    BLUESKY_ROOM_CREATE_RATE_PER_MINUTE: '0',
    BLUESKY_MAX_OPEN_ROOMS_PER_IP: '0',
    ...EXTRA_ENV,
  });
  server = srv;
  /** Idle, then a full GC, so that the heap figure is what is still live. */
  const settle = async (): Promise<Settled> => {
    const settled = await awaitIdle(srv.url, () => openFds(srv.pid), SETTLE_SECONDS * 1000);
    await srv.collectGarbage();
    const { heapUsedBytes } = await readGauges(srv.url);
    return { ...settled, reading: { ...settled.reading, heapUsedBytes } };
  };
  const cookies: SignalCookies = new Map();
  sfu = new SfuChurn(srv.url, LEGS, LEGS_PER_ROOM, WORKERS);
  await sfu.setup();
  // Keys are made once: the same VOIP users come back each round.
  const voip = new VoipChurn(srv.url, LISTENERS, ROOM_SIZE);
  rows.push(measure(srv, 'before', await settle()));
  console.log(
    JSON.stringify({ round: 'before', serverPid: srv.pid, rssMiB: rows[0]!.rssMiB, fds: rows[0]!.fds }),
  );

  for (let round = 1; round <= ROUNDS; round++) {
    const signal = new SignalChurn(srv.url, SIGNAL, MESSAGES, cookies);
    const t0 = performance.now();
    await Promise.all([signal.connect(), sfu.connect(), voip.connect()]);
    const connectSeconds = (performance.now() - t0) / 1000;
    alive(srv);
    await new Promise((r) => setTimeout(r, HOLD_SECONDS * 1000)); // everything open at once, media flowing
    const signalRound = signal.drop();
    const voipRound = voip.drop();
    const sfuRound = await sfu.drop();
    const settled = await settle();
    alive(srv);
    const row = {
      ...measure(srv, String(round), settled),
      signal: signalRound,
      sfu: sfuRound,
      voip: voipRound,
    };
    rows.push(row);
    console.log(
      JSON.stringify({
        round,
        connectSeconds: Math.round(connectSeconds),
        rssMiB: row.rssMiB,
        fds: row.fds,
        heapMiB: row.heapMiB,
        settleSeconds: row.settleSeconds,
        idle: row.idle,
        fdsStable: row.fdsStable,
        stillOpen: row.stillOpen,
        signal: signalRound,
        sfu: sfuRound,
        voip: voipRound,
        serverLog: row.serverLog,
      }),
    );
    if (!row.idle || !row.fdsStable) failed = true;
  }
} catch (err) {
  failed = true;
  console.error(`soak aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanup();
}
if (rows.length > 0) printTables(rows);
process.exit(failed ? 1 : 0);
