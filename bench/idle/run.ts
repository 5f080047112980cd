// `npm run bench:idle [-- --dist DIR] [--runs N]`: the idle footprint of the production
// build (#17.2). Builds into a temp folder with scripts/build-dist.mjs (or takes --dist, a
// folder `npm run build` made inside the checkout, so node_modules resolves), then starts
// `node DIST/src/main.js serve` with every surface on, each surface alone and none, and
// reports for each the wall time from spawn to /readyz 200, the CPU the process used until
// then (less sensitive than wall time to a shared machine) and its RSS at ready and after
// 2 s idle. Medians of --runs (default 3) interleaved runs. To measure a runtime setting:
// `--node-args=--v8-pool-size=2` (before the entry; space-separated) and `--env MALLOC_ARENA_MAX=1,K=V`.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, freePort, rssBytes } from '../lib/server-process.js';
import { freeUdpPort } from '../../test/fixtures/free-udp-port.js';

const { values } = parseArgs({
  options: {
    dist: { type: 'string' },
    runs: { type: 'string' },
    'node-args': { type: 'string' },
    env: { type: 'string' },
  },
});
const runs = Number(values.runs ?? 3);
const nodeArgs = (values['node-args'] ?? '').split(' ').filter(Boolean);
const extraEnv = Object.fromEntries(
  (values.env ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const repo = process.cwd();

/** Each surface's switch: `<NAME>_ENABLED` (Chorus's own API: CHORUS_API_ENABLED). */
const SURFACES = ['SIGNAL', 'BLUESKY', 'VOIP', 'BEEP', 'STREAM', 'CHORUS_API'] as const;
const only = (on: readonly string[]): Record<string, string> =>
  Object.fromEntries(SURFACES.map((s) => [`${s}_ENABLED`, on.includes(s) ? 'yes' : 'no']));
const CASES: [string, Record<string, string>][] = [
  ['all surfaces', only(SURFACES)],
  ...SURFACES.map((s): [string, Record<string, string>] => [
    `${s === 'CHORUS_API' ? 'chorus (native API)' : s.toLowerCase()} alone`,
    only([s]),
  ]),
  ['none', only([])],
];

interface Sample {
  readyMs: number;
  cpuMs: number;
  rssReadyMiB: number;
  rssIdleMiB: number;
  /** Of the idle RSS: anonymous (heap, malloc, stacks) and file-backed (the node binary, libraries). */
  anonIdleMiB: number;
  fileIdleMiB: number;
}

async function once(main: string, env: Record<string, string>): Promise<Sample> {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'chorus-idle-'));
  const t0 = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, main, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      HTTP_PORT: String(port),
      BIND_ADDRESS: '127.0.0.1',
      WEBRTC_UDP_PORT: String(await freeUdpPort()),
      DATA_DIR: data,
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'no',
      ...extraEnv,
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  try {
    for (;;) {
      if (gone) throw new Error('chorus exited before it was ready');
      try {
        if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const readyMs = performance.now() - t0;
    const cpuMs = cpuSeconds(child.pid!) * 1000;
    const rssReadyMiB = rssBytes(child.pid!) / 2 ** 20;
    await new Promise((r) => setTimeout(r, 2000)); // idle: what it keeps, not what it peaked at
    const rssIdleMiB = rssBytes(child.pid!) / 2 ** 20;
    const status = readFileSync(`/proc/${child.pid!}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    return {
      readyMs,
      cpuMs,
      rssReadyMiB,
      rssIdleMiB,
      anonIdleMiB: kib('RssAnon') / 1024,
      fileIdleMiB: kib('RssFile') / 1024,
    };
  } finally {
    process.kill(child.pid!, 'SIGTERM');
    await exited;
    rmSync(data, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let dist = values.dist ? resolve(values.dist) : undefined;
let built: string | undefined;
if (!dist) {
  built = mkdtempSync(join(tmpdir(), 'chorus-idle-dist-'));
  dist = join(built, 'dist');
  execFileSync(process.execPath, ['scripts/build-dist.mjs', dist], { stdio: 'inherit' });
  // Resolve packages from the checkout, as a dist/ inside it does.
  symlinkSync(join(repo, 'node_modules'), join(built, 'node_modules'));
}
const main = join(dist, 'src/main.js');
const samples = new Map<string, Sample[]>(CASES.map(([name]) => [name, []]));
const load0 = loadavg()[0]!;
for (let i = 0; i < runs; i++) {
  for (const [name, env] of CASES) samples.get(name)!.push(await once(main, env));
}
const load1 = loadavg()[0]!;
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
console.log(
  `bench:idle  node ${process.version}  commit ${commit}  ${cpus().length} cores  load ${load0.toFixed(1)} -> ${load1.toFixed(1)}  ${runs} runs (medians)` +
    (nodeArgs.length ? `  node args ${nodeArgs.join(' ')}` : '') +
    (values.env ? `  env ${values.env}` : ''),
);
console.log(
  '| Configuration | Ready (wall, ms) | CPU to ready (ms) | RSS at ready (MiB) | RSS idle 2 s later (MiB) | of which anon / file (MiB) |',
);
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name] of CASES) {
  const s = samples.get(name)!;
  const m = (k: keyof Sample): string => median(s.map((x) => x[k])).toFixed(k.endsWith('MiB') ? 1 : 0);
  console.log(
    `| ${name} | ${m('readyMs')} | ${m('cpuMs')} | ${m('rssReadyMiB')} | ${m('rssIdleMiB')} | ${m('anonIdleMiB')} / ${m('fileIdleMiB')} |`,
  );
}
if (built) rmSync(built, { recursive: true, force: true });
// Keep the JSON for tooling that reads the figures.
if (process.env.BENCH_JSON) console.log(JSON.stringify(Object.fromEntries(samples)));
