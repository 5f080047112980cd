import { setFlagsFromString } from 'node:v8';

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

export function releaseYoungGeneration(): void {
  setFlagsFromString(DEFAULT);
}
