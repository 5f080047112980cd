// bench:signal's PeerJS server (`--server peerjs`, #17.1): the npm package `peer`, latest
// 1.x, run as its README's "custom server" does (`PeerServer({ port, path: '/' })`), so
// the same load can be measured against it side by side with Chorus.
//
// `peer` is not a dependency of this project (the server needs none of it): on first use
// it is installed into a cache outside the repository, `~/.cache/chorus-bench/peerjs`
// (`npm install --prefix <dir> peer@1 --no-save`; CHORUS_BENCH_PEERJS_DIR moves it), and
// started from there.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startBenchServer, type BenchServer } from '../lib/server-process.js';

const DIR = process.env.CHORUS_BENCH_PEERJS_DIR ?? join(os.homedir(), '.cache', 'chorus-bench', 'peerjs');

/**
 * The process the bench starts: PeerServer with the package's defaults but two: where it
 * listens (startBenchServer's HTTP_PORT and BIND_ADDRESS), and `concurrent_limit`, whose
 * default (5,000) would refuse the comparison load's 10,000 connections. Its own routes
 * log nothing (the package's bin logs a line per connection; the library does not).
 * SIGTERM exits through 'exit', so the bench's GC-log preload writes its file, as
 * Chorus's graceful stop does.
 */
const LAUNCHER = `import { PeerServer } from 'peer';
PeerServer({
  port: Number(process.env.HTTP_PORT),
  host: process.env.BIND_ADDRESS,
  path: '/',
  concurrent_limit: Number(process.env.PEERJS_CONCURRENT_LIMIT),
});
process.on('SIGTERM', () => process.exit(0));
`;

/** The installed `peer`'s version, installing it into the cache first if it is not there. */
export function ensurePeerJs(): string {
  const manifest = join(DIR, 'node_modules', 'peer', 'package.json');
  if (!existsSync(manifest)) {
    mkdirSync(DIR, { recursive: true });
    console.error(`bench:signal: installing peer@1 into ${DIR} (once)`);
    execFileSync('npm', ['install', '--prefix', DIR, 'peer@1', '--no-save', '--no-audit', '--no-fund'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

/**
 * A PeerJS server holding up to `connections` clients, started as bench:signal starts
 * Chorus (BENCH_NODE_ARGS, the env given): ready once its root answers.
 */
export async function startPeerJsServer(
  connections: number,
  env: Record<string, string>,
): Promise<BenchServer> {
  ensurePeerJs();
  const launcher = join(DIR, 'serve-peerjs.mjs');
  writeFileSync(launcher, LAUNCHER);
  return startBenchServer(
    { ...env, PEERJS_CONCURRENT_LIMIT: String(Math.max(5000, connections)) },
    { main: launcher, readyPath: '/' },
  );
}
