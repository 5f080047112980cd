import { ChorusError } from '../../core/errors.js';
import type { TrackSource } from '../../core/room-types.js';
import { parseOffer } from '../../media/webrtc/sdp-validation.js';

const AUDIO_SOURCES: readonly TrackSource[] = ['microphone', 'screen'];
const VIDEO_SOURCES: readonly TrackSource[] = ['camera', 'screen'];

/**
 * The source of each kind a `publish` offer sends (`asked`, else microphone and camera),
 * each checked against the kind and the token's `canPublishSources`: one sending section
 * per kind, as each named peer connection publishes at most one audio and one video.
 */
export function publishSources(
  sdp: string,
  asked: { audio?: TrackSource | undefined; video?: TrackSource | undefined },
  canPublishSources: readonly string[] | undefined,
): Partial<Record<'audio' | 'video', TrackSource>> {
  const out: Partial<Record<'audio' | 'video', TrackSource>> = {};
  for (const m of parseOffer(sdp).media) {
    if (m.direction !== 'sendonly' && m.direction !== 'sendrecv') continue;
    if (m.kind !== 'audio' && m.kind !== 'video') continue;
    if (out[m.kind])
      throw new ChorusError(
        'invalid_sdp',
        `at most one ${m.kind} section may send per publish (publish another on its own 'pc')`,
      );
    const source = asked[m.kind] ?? (m.kind === 'audio' ? 'microphone' : 'camera');
    if (!(m.kind === 'audio' ? AUDIO_SOURCES : VIDEO_SOURCES).includes(source))
      throw new ChorusError('invalid_argument', `a ${m.kind} track cannot have the source ${source}`);
    if (canPublishSources && !canPublishSources.includes(source))
      throw new ChorusError('forbidden', `token may not publish the source ${source} (canPublishSources)`);
    out[m.kind] = source;
  }
  return out;
}
