/**
 * @chorus/sdk: the browser client of Chorus's native signalling. See README.md.
 */
export { Room, type RoomOptions } from './room.js';
export type {
  ActiveSpeaker,
  ConnectionState,
  DisconnectReason,
  RoomEvents,
  SpeakerSource,
} from './room-events.js';
export { LocalParticipant, type PublishOptions } from './local-participant.js';
export { RemoteParticipant } from './remote-participant.js';
export { TrackPublication, LocalTrackPublication, RemoteTrackPublication } from './track-publication.js';
export { ChorusError } from './errors.js';
export { videoSettings, type VideoSettings, type ElementView } from './adaptive-video.js';
export { simulcastEncodings } from './simulcast-encodings.js';
export { TypedEmitter, type EventMap } from './typed-emitter.js';
export { Backoff, backoffDelay, type BackoffOptions } from './backoff.js';
export { SpeakerLevels, type SpeakerLevel, type SpeakerLevelOptions } from './speaker-levels.js';
export { signalUrl } from './signal-connection.js';
export { PROTOCOL_VERSION, CloseCodes } from './protocol.js';
export type * from './protocol.js';
