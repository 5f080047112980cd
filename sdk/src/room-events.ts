import type { LocalParticipant } from './local-participant.js';
import type { RemoteParticipant } from './remote-participant.js';
import type { LocalTrackPublication, RemoteTrackPublication } from './track-publication.js';
import type { ChorusError } from './errors.js';

/** An active speaker, loudest first; `level` 0..1. */
export interface ActiveSpeaker {
  identity: string;
  level: number;
}

/** Where `activeSpeakers` comes from: the server's `speakers` messages, or audio levels measured here. */
export type SpeakerSource = 'server' | 'client';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/** Why the room ended for this client. */
export interface DisconnectReason {
  /** `left` (you called disconnect), `removed`, `roomClosed`, `duplicateIdentity`, `serverLeave`, `reconnectFailed`. */
  code: 'left' | 'removed' | 'roomClosed' | 'duplicateIdentity' | 'serverLeave' | 'reconnectFailed';
  message: string;
}

/** Every event a Room emits, with its listener's arguments. */
export type RoomEvents = {
  /** Someone joined after me (those already there are in `room.participants` at connect). */
  participantJoined: (participant: RemoteParticipant) => void;
  participantLeft: (participant: RemoteParticipant, reason: string) => void;
  /** A remote track appeared (subscribed automatically unless `autoSubscribe` is off). */
  trackPublished: (publication: RemoteTrackPublication, participant: RemoteParticipant) => void;
  trackUnpublished: (publication: RemoteTrackPublication, participant: RemoteParticipant) => void;
  /**
   * A remote track's media arrives: attach `track` to a media element. It fires again with
   * a new MediaStreamTrack when the leg is renegotiated (their tracks changed, a reconnect):
   * attach the newest one.
   */
  trackSubscribed: (
    track: MediaStreamTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  ) => void;
  trackUnsubscribed: (
    track: MediaStreamTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  ) => void;
  /** A track was muted, by its publisher or the room service (mine too: `participant` is then the local one). */
  trackMuted: (
    publication: RemoteTrackPublication | LocalTrackPublication,
    participant: RemoteParticipant | LocalParticipant,
  ) => void;
  trackUnmuted: (
    publication: RemoteTrackPublication | LocalTrackPublication,
    participant: RemoteParticipant | LocalParticipant,
  ) => void;
  localTrackPublished: (publication: LocalTrackPublication) => void;
  localTrackUnpublished: (publication: LocalTrackPublication) => void;
  /** Who speaks now, loudest first (empty: nobody); see `room.speakerSource`. */
  activeSpeakers: (speakers: ActiveSpeaker[]) => void;
  /** Data from another participant (`participant`), or from the room service (undefined). */
  dataReceived: (
    payload: string | Uint8Array,
    participant: RemoteParticipant | undefined,
    topic: string | undefined,
  ) => void;
  /** The signalling connection dropped; the room tries to resume, then to rejoin. */
  reconnecting: () => void;
  /** Back: `resumed` true when the session resumed, false after a full rejoin (tracks republished). */
  reconnected: (resumed: boolean) => void;
  /** The room is over for this client; no more events follow. */
  disconnected: (reason: DisconnectReason) => void;
  connectionStateChanged: (state: ConnectionState) => void;
  /** A request failed in the background (a renegotiation, a server `error` not tied to a call). */
  error: (err: ChorusError | Error) => void;
};
