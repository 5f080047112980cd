import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ThrottledLog } from '../../lib/throttled-log.js';
import type { Bus, BusMessage, BusSubscription } from '../../ports/bus/bus.js';
import { busJson, readBusJson } from '../bus-json.js';
import { identity, roomName } from './access-token.js';

/**
 * Resuming a native signalling session on another node than the one holding it (a load
 * balancer sent the reconnect elsewhere). The holder listens on a subject derived from
 * the session's resume token; a node that a client resumes on and that does not hold the
 * session asks there, and the holder hands the session over: it answers with the next
 * `seq` and the messages the client missed, and ends its session without the
 * participant being announced as leaving. The token is a secret and subjects can be
 * observed (NATS monitoring, logs), so the subject carries its SHA-256, never the token.
 */

/** How long the resuming node waits for the holder: past it the client gets a fresh join. */
export const HANDOVER_TIMEOUT_MS = 3_000;
/** The most missed messages a holder hands over (a session keeps at most 500). */
const MAX_HANDED_MESSAGES = 500;
/** Room feed messages a session remembers having heard (their fingerprints), for a move. */
export const HEARD_KEPT = 128;

export const resumeSubject = (resumeToken: string): string =>
  `chorus.rtc.resume.${createHash('sha256').update(resumeToken).digest('hex')}`;

/** Nodes whose speakers a handover carries (a room spans few nodes; a bound for the parse). */
const MAX_SPEAKER_NODES = 64;
const speakersOfNode = z.object({
  node: z.string().max(256),
  speakers: z.array(z.object({ identity, level: z.number().min(0).max(1) })).max(1000),
});
/** The speakers one node last reported in the room, as a session keeps them. */
export type SpeakersOfNode = z.infer<typeof speakersOfNode>;

/** What the resuming node asks: the identity and room its client's access token names. */
export const handoverRequest = z.object({
  room: roomName,
  identity,
  lastSeq: z.number().int().min(0),
  node: z.string().max(256),
});
export type HandoverRequest = z.infer<typeof handoverRequest>;

/**
 * The holder's answer: refused (another identity or room, or the session just ended), or
 * the session's last `seq` and the messages after the client's `last_seq` as sent (each
 * with its own `seq`), `missed` absent when they are no longer all kept.
 */
export const handoverReply = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(false), reason: z.string().max(256) }),
  z.object({
    ok: z.literal(true),
    seq: z.number().int().min(0),
    missed: z
      .array(z.object({ seq: z.number().int().min(1), text: z.string().max(70_000) }))
      .max(MAX_HANDED_MESSAGES)
      .optional(),
    /** The fingerprints of the last room feed messages the session heard there, oldest first. */
    heard: z.array(z.string().max(64)).max(HEARD_KEPT),
    /**
     * Who speaks, as each node last said (optional: a node of an older version omits it).
     * The new node hears each node's next change only; without these, the first change
     * of one node would drop the speakers of the others from the mover's list.
     */
    speakers: z.array(speakersOfNode).max(MAX_SPEAKER_NODES).optional(),
  }),
]);
export type HandoverReply = z.infer<typeof handoverReply>;

/** A session handed over: where the new node continues from. */
export type HandedSession = Extract<HandoverReply, { ok: true }>;

/**
 * What the new node heard of the room feed while it asked (it listens before asking, so
 * nothing falls between the two nodes) minus what the old one heard too: the longest
 * start of `early` that ends `heardThere` (both nodes hear the feed in one order).
 */
export function unheard<T extends { heard: string }>(
  early: readonly T[],
  heardThere: readonly string[],
): T[] {
  for (let k = Math.min(early.length, heardThere.length); k > 0; k--) {
    const offset = heardThere.length - k;
    let same = true;
    for (let i = 0; i < k && same; i++) same = early[i]!.heard === heardThere[offset + i];
    if (same) return early.slice(k);
  }
  return [...early];
}

/**
 * Asks the node holding `resumeToken`'s session to hand it over; undefined when no node
 * holds it, it refused, or it did not answer within HANDOVER_TIMEOUT_MS (a node that
 * died mid-way): the caller starts a fresh session.
 */
export async function askForSession(
  bus: Bus,
  resumeToken: string,
  request: HandoverRequest,
  busLog: ThrottledLog,
  log: Logger,
): Promise<HandedSession | undefined> {
  const subject = resumeSubject(resumeToken);
  let answer: Uint8Array;
  try {
    answer = await bus.request(subject, busJson(request), { timeoutMs: HANDOVER_TIMEOUT_MS });
  } catch (err) {
    // No responders: no node holds it (expired, unknown, or its node is gone).
    log.info({ err: (err as Error).message }, 'chorus rtc: no node handed the session over');
    return undefined;
  }
  const reply = readBusJson(handoverReply, answer, { surface: 'chorus', subject }, busLog);
  if (!reply) return undefined;
  if (!reply.ok) {
    log.info({ reason: reply.reason }, 'chorus rtc: the holding node refused the handover');
    return undefined;
  }
  return reply;
}

/**
 * Listens for handover requests of one session (its holder calls this); `answer` checks the
 * request and hands the session over (ending it here) or refuses.
 */
export function offerSession(
  bus: Bus,
  resumeToken: string,
  answer: (request: HandoverRequest) => HandoverReply,
  busLog: ThrottledLog,
  log: Logger,
): BusSubscription {
  const subject = resumeSubject(resumeToken);
  return bus.subscribe(subject, (msg: BusMessage) => {
    try {
      const request = readBusJson(handoverRequest, msg.data, { surface: 'chorus', subject }, busLog);
      const reply: HandoverReply = request
        ? answer(request)
        : { ok: false, reason: 'malformed handover request' };
      msg.respond?.(busJson(reply));
    } catch (err) {
      log.error({ err }, 'chorus rtc: handover handler threw');
      msg.respond?.(busJson({ ok: false, reason: 'internal error' } satisfies HandoverReply));
    }
  });
}
