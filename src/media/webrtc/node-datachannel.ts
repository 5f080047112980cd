import { createRequire } from 'node:module';
import type * as NodeDatachannel from 'node-datachannel';

const requireHere = createRequire(import.meta.url);

/**
 * node-datachannel, loaded on the first WebRTC leg rather than when the SFU's modules
 * are: an idle server never maps libdatachannel (2.6 MiB of RSS, bench/idle,
 * BENCHMARKS.md). Synchronous, so a leg is still made in one step; after the first call
 * this is a lookup in require's cache. Called where legs, tracks and their RTCP handlers
 * are made, never per packet. The CommonJS build loads the same native addon as the ESM
 * one, and the SFU hands its objects only to libdatachannel, never to another copy.
 */
export function nodeDatachannel(): typeof NodeDatachannel {
  return requireHere('node-datachannel') as typeof NodeDatachannel;
}
