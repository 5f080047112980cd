import { ChorusError } from '../../core/errors.js';
import { asUserId } from '../../core/ids.js';
import type { Room } from '../../core/room.js';
import type { Sfu } from '../../media/webrtc/sfu.js';
import type { ClientMessage } from './rtc-schemas.js';

type TrackSettings = Extract<ClientMessage, { type: 'trackSettings' }>;

/** The `layersWanted` event a publisher's client gets (sdk/src/protocol.ts, LayersWantedEvent). */
export type LayersWantedMessage = {
  type: 'layersWanted';
  trackId: string;
  /** Every layer in the offer's order: its rid (`ssrc:<n>` for SSRC simulcast) and whether anyone receives it. */
  layers: Array<{ rid: string; active: boolean }>;
};

/**
 * A subscriber's `trackSettings`: the size it shows one of `identity`'s videos at, and
 * whether it shows it at all, become its leg's layer preference (docs/sfu.md, "Layer
 * choice"). A track it does not receive is `not_found`.
 */
export function applyTrackSettings(sfu: Sfu, room: Room, subscriber: string, msg: TrackSettings): void {
  const found = sfu.setLayerPreference(
    room,
    asUserId(subscriber),
    asUserId(msg.identity),
    { maxWidth: msg.width ?? 0, maxHeight: msg.height ?? 0, active: msg.active !== false },
    msg.trackId,
  );
  if (!found)
    throw new ChorusError(
      'not_found',
      `you receive no video ${msg.trackId} of ${msg.identity} (subscribe first)`,
    );
}

/**
 * Follows the SFU's "layers wanted" events of `publisher`'s tracks in `room` on this node
 * and hands each to `send` (the SFU reports a track's set only when it changes). Returns
 * the function that stops it.
 */
export function watchLayersWanted(
  sfu: Sfu,
  room: string,
  publisher: string,
  send: (msg: LayersWantedMessage) => void,
): () => void {
  return sfu.layersWanted.on((e) => {
    if (e.room !== room || e.publisher !== publisher) return;
    send({
      type: 'layersWanted',
      trackId: e.track,
      layers: e.layers.map((l) => ({ rid: l.name, active: l.wanted })),
    });
  });
}
