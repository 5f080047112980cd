import type { MediaKind, RtpCodec } from './sdp.js';

/** A codec Chorus forwards, as negotiated with one peer (payload types differ per peer). */
export interface CodecChoice {
  kind: MediaKind;
  /** Canonical name: opus, VP8, H264. */
  name: 'opus' | 'VP8' | 'H264';
  payloadType: number;
  clockRate: number;
  fmtp: string | undefined;
}

function fmtpParams(fmtp: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of (fmtp ?? '').split(';')) {
    const [k, v] = kv.split('=');
    if (k && v !== undefined) out.set(k.trim().toLowerCase(), v.trim());
  }
  return out;
}

/** H.264 constrained baseline (profile_idc 0x42, constraint_set1) in packetization mode 1. */
function isConstrainedBaseline(c: RtpCodec): boolean {
  const p = fmtpParams(c.fmtp);
  const profile = (p.get('profile-level-id') ?? '').toLowerCase();
  return p.get('packetization-mode') === '1' && /^42[ce]0/.test(profile);
}

/**
 * The server's codec list, in preference order. VP8 first: every browser has it and it
 * needs no profile matching; a room forwards one video codec, so all peers must share it.
 */
export function chooseCodec(
  kind: string,
  offered: readonly RtpCodec[],
  require?: CodecChoice,
): CodecChoice | undefined {
  const pick = (c: RtpCodec, name: CodecChoice['name']): CodecChoice => ({
    kind: kind as MediaKind,
    name,
    payloadType: c.payloadType,
    clockRate: c.clockRate,
    fmtp: c.fmtp,
  });
  const candidates: CodecChoice[] = [];
  if (kind === 'audio') {
    for (const c of offered)
      if (c.name.toLowerCase() === 'opus' && c.clockRate === 48000) candidates.push(pick(c, 'opus'));
  } else if (kind === 'video') {
    for (const c of offered)
      if (c.name.toUpperCase() === 'VP8' && c.clockRate === 90000) candidates.push(pick(c, 'VP8'));
    for (const c of offered)
      if (c.name.toUpperCase() === 'H264' && isConstrainedBaseline(c)) candidates.push(pick(c, 'H264'));
  }
  if (require) return candidates.find((c) => c.name === require.name);
  return candidates[0];
}
