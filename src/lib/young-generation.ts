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

/**
 * Allocation-site pretenuring off, unless the operator chose (`--[no-]allocation-site-pretenuring`).
 *
 * V8 counts how many objects of each object or array literal survive a scavenge; a site whose
 * objects nearly all survive is switched to allocate straight into the old generation, and
 * stays switched. A burst of connections (10,000 in a few seconds) makes sites look that way
 * which later allocate per message too, and in about half of the Signal benchmark's runs at an
 * 8 MiB young generation (one in six to ten at 16 MiB, as started in production) the server's
 * old generation then grew by 5-10 MB a second at 5,000 messages a second: a mark-compact
 * every 1-3 s, with marking steps of up to 16-24 ms on the main thread, p99 hops of
 * 13-17 ms and 670-1,480 hops over 20 ms in 40 s, against 3-4 ms and none otherwise. With
 * pretenuring off the same runs never did (BENCHMARKS.md, session 14, #17). What it costs: a
 * burst's long-lived objects are copied once by a scavenge before they reach the old
 * generation, as every other object is.
 */
// V8 flags are refused in NODE_OPTIONS: only node's own command line can name it.
const operatorChosePretenuring = process.execArgv.some((arg) =>
  /^--(no-)?allocation[-_]site[-_]pretenuring$/.test(arg),
);
if (!operatorChosePretenuring) setFlagsFromString('--no-allocation-site-pretenuring');

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
