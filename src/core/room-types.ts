import type { Brand } from './ids.js';
import type { Participant } from './participant.js';
import type { Room } from './room.js';
import type { Track } from './track.js';

/**
 * Public types of the domain model (Room, Participant, Track), apart from the classes so
 * that surfaces and media can name them without the implementation.
 */

export type RoomId = Brand<string, 'RoomId'>;
export const asRoomId = (s: string): RoomId => s as RoomId;

/** Who (or which connection) is in a room: a user id, or a user's client for Beep. */
export type ParticipantId = Brand<string, 'ParticipantId'>;
export const asParticipantId = (s: string): ParticipantId => s as ParticipantId;

/**
 * What a room is for: a Blue Sky conference (SFU), a VOIP call (two parties), a VOIP
 * group room (server-mixed), a Beep conversation (server-mixed).
 */
export type RoomKind = 'conference' | 'call' | 'group' | 'conversation';

export type TrackKind = 'audio' | 'video';
/** Where a track's media comes from on the publisher's side. */
export type TrackSource = 'microphone' | 'camera' | 'screen';

export interface TrackInit {
  /** Unique within its participant; a second publish of the same id replaces the first. */
  id: string;
  kind: TrackKind;
  source: TrackSource;
  /** The negotiated codec's name, when one is known. */
  codec?: string;
}

/** A plain summary of a track, for listings and logs. */
export interface TrackInfo {
  id: string;
  kind: TrackKind;
  source: TrackSource;
  codec: string;
}

export interface RoomOptions<M> {
  kind: RoomKind;
  /** Most participants at once; 0: no limit. A join past it throws ChorusError('capacity'). */
  capacity?: number;
  /** The room closes itself when its last participant leaves. */
  closeWhenEmpty?: boolean;
  /**
   * A participant leaves by itself once it publishes no track and receives nothing
   * (the media that kept it in the room has all ended).
   */
  leaveWhenIdle?: boolean;
  /** Surface data carried with the room (a VOIP room's name, a call's parties). */
  metadata: M;
}

/** Why something closed: free text for logs, plus the few reasons code tests for. */
export type CloseReason = string;

// ---- events --------------------------------------------------------------------
// `events` are control events: media and surfaces act on them (stop a leg, tell a
// client). `observer` events are for monitoring (metrics, logs) and never drive
// behaviour; a listener of either that throws is logged and the others still run.

export interface TrackEvents extends Record<string, unknown> {
  /** The track ended: whatever carries its media stops. Emitted once. */
  ended: { track: Track; reason: CloseReason };
  /** Muted or unmuted, by its publisher or by the server (`byServer`). */
  muted: { track: Track; muted: boolean; byServer: boolean };
}

export interface TrackObserverEvents extends Record<string, unknown> {
  close: { track: Track; reason: CloseReason };
}

export interface ParticipantEvents extends Record<string, unknown> {
  trackPublished: { participant: Participant; track: Track };
  trackEnded: { participant: Participant; track: Track; reason: CloseReason };
  subscribed: { participant: Participant; source: string };
  unsubscribed: { participant: Participant; source: string; reason: CloseReason };
  /** The participant left (its tracks ended and its subscriptions dropped first). Once. */
  left: { participant: Participant; reason: CloseReason };
}

export interface ParticipantObserverEvents extends Record<string, unknown> {
  newtrack: { track: Track };
  close: { participant: Participant; reason: CloseReason };
}

export interface RoomEvents extends Record<string, unknown> {
  participantJoined: { room: Room; participant: Participant };
  participantLeft: { room: Room; participant: Participant; reason: CloseReason };
  trackPublished: { room: Room; participant: Participant; track: Track };
  trackEnded: { room: Room; participant: Participant; track: Track; reason: CloseReason };
  subscribed: { room: Room; participant: Participant; source: string };
  unsubscribed: { room: Room; participant: Participant; source: string; reason: CloseReason };
  /** The room closed, after every participant left. Once. */
  close: { room: Room; reason: CloseReason };
}

export interface RoomObserverEvents extends Record<string, unknown> {
  newparticipant: { participant: Participant };
  close: { room: Room; reason: CloseReason };
}

export interface RoomRegistryObserverEvents extends Record<string, unknown> {
  newroom: { room: Room };
}
