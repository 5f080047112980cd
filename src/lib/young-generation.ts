import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8 grows the young generation (new space, up to 2 x 16 MiB) when most of what it
 * scavenges survives. Start-up is exactly that (every module, route and table loaded is
 * kept), so an idle server used to keep 16-20 MiB of young space it had grown while
 * loading and never needed again (bench/idle, BENCHMARKS.md). Imported first by main.ts,
 * this holds the young generation at its initial size while the server is built;
 * `releaseYoungGeneration()` (once the surfaces are mounted) gives V8 its default growth
 * back, so real load still gets a large young generation when its allocation rate asks.
 */
const HELD = '--semi-space-growth-factor=1';
/** V8's default (unchanged from Node 20's V8 11 to Node 24's V8 13). */
const DEFAULT = '--semi-space-growth-factor=2';

setFlagsFromString(HELD);

let settled = false;

export function releaseYoungGeneration(): void {
  setFlagsFromString(DEFAULT);
  // Once per process: a process that builds several servers (tests) settles after the first.
  if (!settled) setImmediate(settleHeap);
  settled = true;
}

type Gc = (options?: { type?: string; execution?: string; flavor?: string }) => void;

/**
 * Start-up leaves garbage and half-empty pages in the old generation that an idle server
 * would keep until its first major GC, which may be hours away: one memory-reducing major
 * GC (compacting, then giving the freed pages back) once the server is built takes about
 * 7 MiB of RSS off on Node 24 (BENCHMARKS.md, #17.2), for one pause of a few tens of ms
 * before the first client. During it V8 also drops the bytecode of functions not running
 * (--stress-flush-code): most ran once, to build the server; one that runs again is
 * compiled again then, lazily, as on its first call. `gc` is reachable without
 * --expose-gc from a context made while the flag is on; the flag is turned off again so
 * no later context gets it.
 */
function settleHeap(): void {
  setFlagsFromString('--expose-gc');
  let gc: Gc;
  try {
    gc = runInNewContext('gc') as Gc;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  setFlagsFromString('--stress-flush-code');
  try {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } finally {
    setFlagsFromString('--no-stress-flush-code');
  }
}
