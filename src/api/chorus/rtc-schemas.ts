import { z } from 'zod';
import { identity, roomName, trackSources } from './access-token.js';

/**
 * The native signalling's client messages and the room feed's bus messages, checked
 * with zod. The client messages mirror sdk/src/protocol.ts (the SDK's plain types):
 * change both together.
 */

const requestId = z.string().max(64).optional();
const source = z.enum(trackSources);
/** A session description: generous, but bounded below the socket's frame limit. */
const sdp = z.string().min(1).max(60_000);

/** Largest `data` payload, in characters (the socket's frame limit is 64 KiB). */
export const MAX_DATA_PAYLOAD = 15_000;
/** Most identities a `data` message may name. */
const MAX_DATA_TARGETS = 100;
const dataTargets = z.array(identity).max(MAX_DATA_TARGETS);
const topic = z.string().max(128);
/**
 * A publisher peer connection's name: a participant may publish on several at once
 * (camera and screen); absent or `main` is the one every client has.
 */
export const pcName = z.string().regex(/^[a-z0-9_-]{1,32}$/, { error: 'expected 1-32 of a-z 0-9 _ -' });
/** The name of the publisher peer connection a `publish` without `pc` negotiates. */
export const MAIN_PC = 'main';

export const clientMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('publish'),
    requestId,
    sdp,
    sources: z.object({ audio: source.optional(), video: source.optional() }).optional(),
    pc: pcName.optional(),
  }),
  z.object({ type: z.literal('unpublish'), requestId, pc: pcName.optional() }),
  z.object({
    type: z.literal('subscribe'),
    requestId,
    identity,
    sdp,
    /** The track each receiving section is for, in section order (absent: the server's order). */
    trackIds: z.array(z.string().min(1).max(300)).max(16).optional(),
  }),
  z.object({ type: z.literal('unsubscribe'), requestId, identity }),
  z.object({ type: z.literal('mute'), requestId, trackId: z.string().min(1).max(300), muted: z.boolean() }),
  z.object({
    type: z.literal('data'),
    requestId,
    payload: z.string().max(MAX_DATA_PAYLOAD),
    to: dataTargets.optional(),
    topic: topic.optional(),
  }),
  z.object({
    type: z.literal('trickle'),
    requestId,
    /** The publisher PC the candidate is for (absent: `main`), or... */
    pc: pcName.optional(),
    /** ... the subscription to this identity (never both). */
    subscription: identity.optional(),
    /** `candidate:...` or `a=candidate:...`; absent with `end: true` (end-of-candidates). */
    candidate: z.string().min(1).max(512).optional(),
    sdpMid: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,32}$/)
      .optional(),
    end: z.literal(true).optional(),
  }),
  z.object({
    type: z.literal('trackSettings'),
    requestId,
    identity,
    trackId: z.string().min(1).max(300),
    /** The rendered size in device pixels (0 or absent: no limit), and whether it is shown at all. */
    width: z.number().int().min(0).max(16_384).optional(),
    height: z.number().int().min(0).max(16_384).optional(),
    active: z.boolean().optional(),
  }),
  z.object({ type: z.literal('ping'), requestId, timestamp: z.number() }),
  z.object({ type: z.literal('leave'), requestId }),
]);
export type ClientMessage = z.infer<typeof clientMessage>;

export const rtcTrackInfo = z.object({
  id: z.string().max(300),
  kind: z.enum(['audio', 'video']),
  source,
  codec: z.string().max(64),
  muted: z.boolean(),
});
export type RtcTrackInfo = z.infer<typeof rtcTrackInfo>;

export const rtcParticipantInfo = z.object({
  identity,
  name: z.string().max(256),
  metadata: z.string().max(4096),
  node: z.string().max(256),
  tracks: z.array(rtcTrackInfo).max(16),
});
export type RtcParticipantInfo = z.infer<typeof rtcParticipantInfo>;

/**
 * What a node tells every node about a conference room's changes on it
 * (`chorus.rtc.room.<room>`); each node hands them to its own sessions in the room.
 */
export const roomFeedEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('participantJoined'), participant: rtcParticipantInfo }),
  z.object({ type: z.literal('participantLeft'), identity, reason: z.string().max(256) }),
  z.object({ type: z.literal('trackPublished'), identity, track: rtcTrackInfo }),
  z.object({
    type: z.literal('trackUnpublished'),
    identity,
    trackId: z.string().max(300),
    reason: z.string().max(256),
  }),
  z.object({
    type: z.literal('trackMuted'),
    identity,
    trackId: z.string().max(300),
    muted: z.boolean(),
    byServer: z.boolean(),
  }),
  z.object({
    type: z.literal('speakers'),
    /** The node whose publishers these are: each node detects among its own. */
    node: z.string().max(256),
    speakers: z.array(z.object({ identity, level: z.number().min(0).max(1) })).max(1000),
  }),
  z.object({
    type: z.literal('data'),
    from: identity.optional(),
    payload: z.string().max(MAX_DATA_PAYLOAD),
    topic: topic.optional(),
    to: dataTargets.optional(),
  }),
]);
export type RoomFeedEvent = z.infer<typeof roomFeedEvent>;

export const roomFeedMessage = z.object({ room: roomName, node: z.string().max(256), event: roomFeedEvent });
export type RoomFeedMessage = z.infer<typeof roomFeedMessage>;
