import { z } from 'zod';
import { subjectToken } from '../../ports/bus/bus.js';
import type { NodeRef } from './voip-node.js';

/** A call or group room whose mixer one node (its owner) runs. */
export interface MixKey {
  readonly kind: 'call' | 'room';
  readonly id: string;
}

/**
 * The subjects of one mixer as hosted by one owner instance, under
 * `chorus.voip.<kind>.<id>.<instance>`: the instance is in the name so that a node that
 * lost the race to own a room, or a dead owner's successor, never answers for another.
 *
 * - `.ctl`: requests from other nodes to take or free a member's slot (`relayRequest`);
 * - `.up.<member>`: a remote upload's PCM, one 20 ms frame (48 kHz mono s16le) a message;
 * - `.mix`: the owner's mixes that other nodes need, one bundle per tick (mix-bundle.ts);
 * - `.node.<node>`: the owner tells one node that a member's slot ended (`relayNotice`);
 * - `.closed`: the call ended or the room closed: every node ends its streams of it.
 */
export function mixSubjects(key: MixKey, owner: NodeRef) {
  const base = `chorus.voip.${key.kind}.${subjectToken(key.id)}.${subjectToken(owner.instance)}`;
  return {
    ctl: `${base}.ctl`,
    mix: `${base}.mix`,
    closed: `${base}.closed`,
    upAll: `${base}.up.*`,
    up: (member: string) => `${base}.up.${subjectToken(member)}`,
    node: (nodeId: string) => `${base}.node.${subjectToken(nodeId)}`,
  };
}

export type MixSubjects = ReturnType<typeof mixSubjects>;

const member = z.string().min(1).max(256);
const slot = z.enum(['mic', 'hds']);

/** A node asks the owner to take (`occupy`) or free (`release`) a member's slot for it. */
export const relayRequest = z.object({
  op: z.enum(['occupy', 'release']),
  member,
  slot,
  node: z.object({ id: z.string().min(1).max(128), instance: z.string().min(1).max(128) }),
});
export type RelayRequest = z.infer<typeof relayRequest>;

/** `gone`: the owner holds no such call or room any more. */
export const relayAnswer = z.object({ outcome: z.enum(['ok', 'conflict', 'capacity', 'gone']) });
export type RelayOutcome = z.infer<typeof relayAnswer>['outcome'];

/** The owner ended a member's slot held through a node (the call ended, the member replaced). */
export const relayNotice = z.object({ op: z.literal('close'), member, slot });
