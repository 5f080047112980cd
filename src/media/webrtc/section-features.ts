import { AUDIO_LEVEL_URI } from './audio-level.js';
import type { KeptWithCodec, MediaSection } from './sdp.js';

/** What a section offers around its chosen codec that the SFU takes part in (#18). */
export interface SectionFeatures {
  /** RTX (RFC 4588) for the codec: the `rtx` payload type whose `apt=` names it. */
  rtxPayloadType: number | undefined;
  /** Opus RED (RFC 2198) carrying the codec: `red/48000/2` with `fmtp <pt>/<pt>`. */
  redPayloadType: number | undefined;
  /** `a=rtcp-fb:<pt> nack`: the peer NACKs and answers NACKs. */
  nack: boolean;
  /** The id of the audio level extension (RFC 6464), when offered. */
  audioLevelId: number | undefined;
}

/** Reads `m`'s features around the codec of payload type `payloadType`. */
export function readFeatures(m: MediaSection, payloadType: number): SectionFeatures {
  const features: SectionFeatures = {
    rtxPayloadType: undefined,
    redPayloadType: undefined,
    nack: false,
    audioLevelId: undefined,
  };
  for (const c of m.codecs) {
    const name = c.name.toLowerCase();
    const params = (c.fmtp ?? '').replace(/\s/g, '');
    if (name === 'rtx' && new RegExp(`(^|;)apt=${payloadType}(;|$)`).test(params))
      features.rtxPayloadType ??= c.payloadType;
    if (name === 'red' && m.kind === 'audio' && params === `${payloadType}/${payloadType}`)
      features.redPayloadType ??= c.payloadType;
  }
  for (const line of m.lines) {
    if (line === `a=rtcp-fb:${payloadType} nack`) features.nack = true;
    const ext = /^a=extmap:(\d+)(?:\/\w+)? (\S+)/.exec(line);
    if (ext && ext[2] === AUDIO_LEVEL_URI && m.kind === 'audio') features.audioLevelId = Number(ext[1]);
  }
  // One-byte extension ids are 1 to 14; anything else is not read.
  if (features.audioLevelId !== undefined && (features.audioLevelId < 1 || features.audioLevelId > 14))
    features.audioLevelId = undefined;
  return features;
}

/** What keepOnlyCodec must keep in a publisher's section for `features`. */
export function keptFor(features: SectionFeatures): KeptWithCodec {
  const payloadTypes: number[] = [];
  if (features.rtxPayloadType !== undefined) payloadTypes.push(features.rtxPayloadType);
  if (features.redPayloadType !== undefined) payloadTypes.push(features.redPayloadType);
  return {
    payloadTypes,
    ...(features.redPayloadType === undefined ? {} : { leading: features.redPayloadType }),
    extensions: features.audioLevelId === undefined ? [] : [AUDIO_LEVEL_URI],
    rtxSsrcs: features.rtxPayloadType !== undefined,
  };
}
