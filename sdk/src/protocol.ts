/**
 * Chorus native signalling, protocol version 1: one WebSocket per participant at
 * `/chorus/v1/rtc`, JSON text frames, one message per frame, each an object with a
 * `type`. Plain types with no dependencies: the server checks every client message
 * against zod schemas that mirror these (src/api/chorus/rtc-schemas.ts).
 *
 * Connect: `GET /chorus/v1/rtc?access_token=<JWT>` (or `Authorization: Bearer <JWT>`).
 * A bad or expired token is refused before the upgrade with 401, a token without
 * `roomJoin` (or naming no room, or no identity) with 403, both with the native error
 * body `{"error": {"code", "message"}}`. The server's first message is `join`.
 *
 * Resume after a network drop: reconnect within `join.resumeGraceSeconds` with
 * `&resume=<join.resumeToken>&last_seq=<seq of the last server message handled>` added.
 * The participant stays in the room meanwhile (its tracks keep their ids). The server
 * answers `resumed` followed by every message the client missed (their original `seq`),
 * or a `join` with the full state instead: `resumeFailed: false` when the session went
 * on but the missed messages are no longer kept (rebuild the room state from it; your
 * tracks and subscriptions continue), `resumeFailed: true` when the session was gone
 * (a new session: reset your room state, publish and subscribe again). A resume that
 * lands on another node than the session's continues it there: `resumed` says
 * `mediaReset: true` (publish and subscribe again on new peer connections).
 *
 * Media: two kinds of RTCPeerConnection, and the client always offers (so no glare):
 * - the publisher PC: `publish` carries its offer (send-only sections), `published`
 *   the answer. Every `publish` is a complete negotiation with a fresh server leg that
 *   replaces the previous one: to add, remove or replace tracks, or after a network
 *   drop, the client creates a NEW RTCPeerConnection with every track it wants to send
 *   and publishes again. At most one audio and one video section per publish (camera
 *   or screen). Track ids stay the same across republishes (`<identity>-audio`,
 *   `<identity>-video`).
 *   A client may publish on several publisher PCs at once, each named by `publish.pc`
 *   (absent or `main`: the one above): a screen share next to the camera is
 *   `pc: 'screen'`, its own leg, replaced only by another publish with that `pc`. Its
 *   tracks are `<identity>-<pc>` (video) and `<identity>-<pc>-audio`; the room still
 *   shows one participant with every track. `unpublish` with `pc` ends that PC only.
 *   Across a cluster's nodes every PC's tracks are relayed.
 * - one subscriber PC per remote participant: `subscribe` carries an offer with
 *   receive-only sections (one per track of theirs to receive), `subscribed` the
 *   answer. When that participant's tracks change (`trackPublished`), subscribe again
 *   with a NEW RTCPeerConnection (the server replaces the previous leg).
 *   `join.autoSubscribe` tells the client library to do this for everyone by itself.
 * Trickle ICE: when `join.trickle` is true the client may send its offer at once and its
 * candidates after it, each in a `trickle` naming the leg (`pc`, or `subscription`), and
 * then `trickle {end: true}`; a complete offer (gathered first) works as well, and is
 * what a client must send to a server without `join.trickle`. The server's answers
 * always carry all its candidates (it gathers before answering): it sends none later.
 *
 * Every server message has `seq` (1, 2, 3, ... per session, kept across a resume).
 * Requests may carry a `requestId` (any string up to 64 chars): the reply or the
 * `error` caused by the request echoes it. Events are state, not deltas to count:
 * applying one twice (e.g. a `participantJoined` for someone already in `join`) must
 * be harmless.
 */

export const PROTOCOL_VERSION = 1;

/** Where a track's media comes from (checked against the token's `canPublishSources`). */
export type TrackSource = 'camera' | 'microphone' | 'screen';
export type TrackKind = 'audio' | 'video';

export interface TrackInfo {
  /** Unique within its participant; stable across republishes and resumes. */
  id: string;
  kind: TrackKind;
  source: TrackSource;
  /** The negotiated codec's name (`opus`, `VP8`, `H264`); '' before negotiation. */
  codec: string;
  /** Muted by its publisher or by the room service: the server forwards none of its media. */
  muted: boolean;
}

export interface ParticipantInfo {
  identity: string;
  /** Display name and application data from the access token ('' when absent). */
  name: string;
  metadata: string;
  /** The node the participant is connected to (a cluster's node id). */
  node: string;
  tracks: TrackInfo[];
}

export interface RoomInfo {
  name: string;
  /** The room service's metadata ('' for a room it never created). */
  metadata: string;
  /** Seconds since the epoch; 0 for a room the room service never created. */
  createdAt: number;
  /** 0: no limit. */
  maxParticipants: number;
}

/** What the token allows, as the server reads it. */
export interface Permissions {
  canPublish: boolean;
  canSubscribe: boolean;
  canPublishData: boolean;
  canPublishSources: TrackSource[];
}

// ---- client -> server ------------------------------------------------------------

interface Request {
  /** Echoed in the reply or error this request causes. */
  requestId?: string;
}

/** Publishes (or republishes) media: the publisher PC's complete offer. Needs `canPublish`. */
export interface PublishRequest extends Request {
  type: 'publish';
  /** SDP offer with at most one audio and one video section, each sendonly or sendrecv. */
  sdp: string;
  /** The source of each kind offered (default: microphone, camera); each must be in `canPublishSources`. */
  sources?: { audio?: TrackSource; video?: TrackSource };
  /** Which publisher PC this is (1-32 of `a-z 0-9 _ -`; default `main`): another name is another leg. */
  pc?: string;
}

/**
 * Stops publishing: ends the server leg of publisher PC `pc` and its tracks; without
 * `pc`, every publisher PC's. A `pc` that publishes nothing is acknowledged all the same.
 */
export interface UnpublishRequest extends Request {
  type: 'unpublish';
  pc?: string;
}

/** Receives `identity`'s tracks: a complete offer for a (new) subscriber PC. Needs `canSubscribe`. */
export interface SubscribeRequest extends Request {
  type: 'subscribe';
  identity: string;
  /** SDP offer with one recvonly (or sendrecv) section per track to receive. */
  sdp: string;
  /**
   * The track id each receiving section is for, in section order (needed when the
   * participant sends two tracks of a kind, camera and screen; absent: the server's order).
   */
  trackIds?: string[];
}

/** Stops receiving `identity`'s tracks (the server ends that subscriber leg). */
export interface UnsubscribeRequest extends Request {
  type: 'unsubscribe';
  identity: string;
}

/** Mutes or unmutes one of the client's own published tracks. */
export interface MuteRequest extends Request {
  type: 'mute';
  trackId: string;
  muted: boolean;
}

/**
 * Application data, delivered reliably (over the signalling sockets) to everyone else
 * in the room or to `to` identities only. Needs `canPublishData`. At most 15,000
 * characters of `payload`.
 */
export interface DataRequest extends Request {
  type: 'data';
  payload: string;
  /** Absent or empty: everyone else in the room. */
  to?: string[];
  /** Free label for the application (up to 128 characters). */
  topic?: string;
}

/**
 * How the client shows one video it receives (adaptive stream): the rendered size in
 * device pixels (0 or absent: no limit) picks the smallest simulcast layer at least that
 * large; `active: false` (hidden, off screen, turned off) stops that video to this client.
 * Answered by `ok`; `not_found` when the client does not receive that track.
 */
export interface TrackSettingsRequest extends Request {
  type: 'trackSettings';
  /** The publisher. */
  identity: string;
  trackId: string;
  width?: number;
  height?: number;
  active?: boolean;
}

/** Keeps the socket alive and measures the round trip; answered by `pong`. Send every ~10 s. */
export interface PingRequest extends Request {
  type: 'ping';
  /** The client's clock (ms), echoed. */
  timestamp: number;
}

/**
 * One ICE candidate of the client for one of its legs (only when `join.trickle`): the
 * publisher PC `pc` (absent: `main`) or the subscription to `subscription` (never both),
 * sent after that leg's `publish`/`subscribe` (candidates that arrive before its answer
 * are held for it). `candidate` is `RTCIceCandidate.candidate` (`candidate:...`, or an
 * `a=candidate:...` line), `sdpMid` its section; `end: true` instead of a candidate says
 * there are no more. At most 64 per leg. A bad candidate gets `error` `invalid_message`,
 * an unknown leg `not_found`, past the limit `capacity`; with a `requestId`, success
 * gets `ok`. The session goes on either way.
 */
export interface TrickleRequest extends Request {
  type: 'trickle';
  pc?: string;
  subscription?: string;
  candidate?: string;
  sdpMid?: string;
  end?: true;
}

/** Leaves the room now (no resume); the server closes the socket with 1000. */
export interface LeaveRequest extends Request {
  type: 'leave';
}

export type ClientMessage =
  | PublishRequest
  | UnpublishRequest
  | SubscribeRequest
  | UnsubscribeRequest
  | MuteRequest
  | DataRequest
  | TrackSettingsRequest
  | PingRequest
  | TrickleRequest
  | LeaveRequest;

// ---- server -> client ------------------------------------------------------------

interface ServerMessageBase {
  /** 1, 2, 3, ... per session, continuous across resumes. */
  seq: number;
}

/** The first message of a session: the room, who you are, who else is there. */
export interface JoinResponse extends ServerMessageBase {
  type: 'join';
  protocol: number;
  room: RoomInfo;
  participant: ParticipantInfo;
  /** Everyone else in the room, on every node, with their tracks. */
  others: ParticipantInfo[];
  permissions: Permissions;
  /** Subscribe to every other participant's tracks as they appear (the library's default). */
  autoSubscribe: boolean;
  /** Present the next connection with this to resume the session. */
  resumeToken: string;
  /** How long after a drop the session waits for a resume before the participant leaves. */
  resumeGraceSeconds: number;
  /** True when this join answers a resume attempt that could not resume: reset your room state. */
  resumeFailed: boolean;
  /** The server takes trickled candidates (`trickle`); absent from servers before it did. */
  trickle?: boolean;
}

/** A resume succeeded: the messages missed follow, with their original `seq`. */
export interface ResumedResponse extends ServerMessageBase {
  type: 'resumed';
  /** How many missed messages follow. */
  replayed: number;
  /**
   * True when the session resumed on another node than the one holding it (a load
   * balancer sent the reconnect elsewhere): the room and the `seq` go on, but the peer
   * connections pointed at the old node's SFU: publish and subscribe again on new ones
   * (the track ids are unchanged; the others see your tracks unpublished and published
   * again, never you leaving).
   */
  mediaReset?: boolean;
}

/** The answer to `publish`; the tracks appear in the room as their media arrives (`trackPublished`). */
export interface PublishedResponse extends ServerMessageBase {
  type: 'published';
  requestId?: string;
  sdp: string;
  /** The ids the offered sections will have, by kind. */
  trackIds: { audio?: string; video?: string };
}

/** The answer to `subscribe`. */
export interface SubscribedResponse extends ServerMessageBase {
  type: 'subscribed';
  requestId?: string;
  identity: string;
  sdp: string;
}

/** Acknowledges `unpublish`, `unsubscribe`, `mute` and `data`. */
export interface OkResponse extends ServerMessageBase {
  type: 'ok';
  requestId?: string;
  /** The request type acknowledged. */
  for: 'unpublish' | 'unsubscribe' | 'mute' | 'data' | 'trickle' | 'trackSettings';
}

export interface PongResponse extends ServerMessageBase {
  type: 'pong';
  requestId?: string;
  /** The ping's timestamp. */
  timestamp: number;
  /** The server's clock (ms). */
  serverTime: number;
}

/** Someone else joined the room (on any node). Never sent about the client itself. */
export interface ParticipantJoinedEvent extends ServerMessageBase {
  type: 'participantJoined';
  participant: ParticipantInfo;
}

/** Someone left the room (left, removed, timed out after a drop). */
export interface ParticipantLeftEvent extends ServerMessageBase {
  type: 'participantLeft';
  identity: string;
  reason: string;
}

/**
 * A track appeared (its media is arriving at the server); subscribe to receive it.
 * Sent for the client's own tracks too (that is when its publish took effect).
 */
export interface TrackPublishedEvent extends ServerMessageBase {
  type: 'trackPublished';
  identity: string;
  track: TrackInfo;
}

/** A track ended. */
export interface TrackUnpublishedEvent extends ServerMessageBase {
  type: 'trackUnpublished';
  identity: string;
  trackId: string;
  reason: string;
}

/**
 * A track was muted or unmuted, by its publisher or by the room service (`byServer`).
 * Also sent to the publisher itself: when `byServer` is true its client should show
 * the track muted (the server forwards nothing until it is unmuted).
 */
export interface TrackMutedEvent extends ServerMessageBase {
  type: 'trackMuted';
  identity: string;
  trackId: string;
  muted: boolean;
  byServer: boolean;
}

/**
 * Active speakers, loudest first (`level`: the smoothed audio amplitude, 0..1, from the
 * publishers' RFC 6464 audio-level header extension), sent whenever the list or its
 * order changes; an empty list when nobody speaks. The whole list each time.
 */
export interface SpeakersEvent extends ServerMessageBase {
  type: 'speakers';
  speakers: Array<{ identity: string; level: number }>;
}

/** Data from another participant, or from the room service (`from` absent). */
export interface DataEvent extends ServerMessageBase {
  type: 'data';
  from?: string;
  payload: string;
  topic?: string;
}

/**
 * To a publisher (dynacast): which simulcast layers of one of its tracks anyone receives,
 * in the offer's order (`rid`: the encoding's rid, `ssrc:<n>` for SSRC simulcast). Sent
 * when the set changes; a client pauses the others (`RTCRtpSender.setParameters`,
 * `encodings[i].active`) and resumes them when they are wanted again.
 */
export interface LayersWantedEvent extends ServerMessageBase {
  type: 'layersWanted';
  trackId: string;
  layers: Array<{ rid: string; active: boolean }>;
}

/** Error codes of `error` messages (and the close reasons' codes). */
export type ErrorCode =
  | 'invalid_message'
  | 'message_too_large'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'invalid_sdp'
  | 'capacity'
  | 'overloaded'
  | 'unavailable'
  /** More than 50 requests a second (burst 100): the request was dropped. */
  | 'rate_limited'
  | 'internal';

/**
 * A request failed; the session goes on unless the socket is closed right after
 * (malformed JSON and unknown message types close it with 4400).
 */
export interface ErrorResponse extends ServerMessageBase {
  type: 'error';
  requestId?: string;
  code: ErrorCode;
  message: string;
}

/** The server ends the session (the socket closes right after, with `closeCode`). */
export interface LeaveEvent extends ServerMessageBase {
  type: 'leave';
  reason: string;
  closeCode: number;
  /** True when reconnecting may work (server shutting down); false when removed or the room closed. */
  canReconnect: boolean;
}

export type ServerMessage =
  | JoinResponse
  | ResumedResponse
  | PublishedResponse
  | SubscribedResponse
  | OkResponse
  | PongResponse
  | ParticipantJoinedEvent
  | ParticipantLeftEvent
  | TrackPublishedEvent
  | TrackUnpublishedEvent
  | TrackMutedEvent
  | SpeakersEvent
  | DataEvent
  | LayersWantedEvent
  | ErrorResponse
  | LeaveEvent;

/**
 * WebSocket close codes the server uses. A refusal before the upgrade is an HTTP
 * 401/403 instead (browsers see only a failed connection: ask your token server again).
 */
export const CloseCodes = {
  /** The client sent `leave`. */
  normal: 1000,
  /** The server is shutting down: reconnect (another node) and resume. */
  goingAway: 1001,
  /** A frame over the limit (64 KiB). */
  messageTooLarge: 1009,
  /** Malformed JSON, an unknown `type`, or a message that is not an object. */
  invalidMessage: 4400,
  /** Removed from the room by the room service. */
  removed: 4403,
  /** The same identity joined again elsewhere. */
  duplicateIdentity: 4409,
  /** The room was closed (deleted by the room service). */
  roomClosed: 4410,
  /** The room is full or the server overloaded: try later. */
  unavailable: 4503,
} as const;
