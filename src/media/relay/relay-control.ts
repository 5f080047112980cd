import { z } from 'zod';
import { busObject } from '../../lib/bus-object.js';
import { RELAY_ID } from './relay-subjects.js';

/** How long a node's interest in a relayed track lasts unless refreshed. */
export const INTEREST_TTL_MS = 6000;
/** How often a node with subscribers of a relayed track says so again. */
export const INTEREST_REFRESH_MS = 2000;

const relay = z.string().regex(RELAY_ID);
const node = z.string().min(1).max(128);

/**
 * What nodes ask of the node that publishes a track, on its control subject:
 * `want` (a request: start or keep relaying to me; the answer says whether the track is
 * still there), `drop` (my last subscriber left), `pli` (a subscriber wants a keyframe; `force` for a
 * new subscriber, which cannot start without one, as a local one forces it).
 */
export const relayControlSchema = z.discriminatedUnion('op', [
  // `layers`: a simulcast track's layers the node's legs receive (index = layer); absent:
  // all of them (a node from before it was said).
  z.object({ op: z.literal('want'), relay, node, layers: z.array(z.boolean()).max(15).optional() }),
  z.object({ op: z.literal('drop'), relay, node }),
  // `layer`: a simulcast track's layer (its index; see simulcast-track.ts), else all of them.
  z.object({
    op: z.literal('pli'),
    relay,
    force: z.boolean().optional(),
    layer: z.number().int().min(0).max(15).optional(),
  }),
]);
export type RelayControl = z.infer<typeof relayControlSchema>;

/** A control message, or undefined when it is not one (untrusted input: dropped by the caller). */
export function readRelayControl(data: Uint8Array): RelayControl | undefined {
  const parsed = relayControlSchema.safeParse(busObject(data, 1024));
  return parsed.success ? parsed.data : undefined;
}

const encoder = new TextEncoder();

export function relayControlBytes(msg: RelayControl): Uint8Array {
  return encoder.encode(JSON.stringify(msg));
}
