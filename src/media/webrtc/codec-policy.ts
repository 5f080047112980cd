import type { MediaKind, RtpCodec } from './sdp.js';

/** The video codecs the SFU forwards. */
export const VIDEO_CODECS = ['VP8', 'VP9', 'H264', 'AV1'] as const;
export type VideoCodecName = (typeof VIDEO_CODECS)[number];
export type CodecName = 'opus' | VideoCodecName;

/**
 * The default order a room's video codec is chosen in. VP8 first: every browser encodes
 * and decodes it, in software everywhere. H.264 next (hardware on phones), then VP9 and
 * AV1, better compression for more CPU, which not every client decodes in real time.
 */
export const DEFAULT_VIDEO_CODECS: readonly VideoCodecName[] = ['VP8', 'H264', 'VP9', 'AV1'];

/** A codec Chorus forwards, as negotiated with one peer (payload types differ per peer). */
export interface CodecChoice {
  kind: MediaKind;
  name: CodecName;
  payloadType: number;
  clockRate: number;
  fmtp: string | undefined;
}

function fmtpParams(fmtp: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of (fmtp ?? '').split(';')) {
    const [k, v] = kv.split('=');
    if (k && v !== undefined) out.set(k.trim().toLowerCase(), v.trim().toLowerCase());
  }
  return out;
}

/**
 * The H.264 profile a `profile-level-id` names (RFC 6184 8.1: profile_idc and the
 * constraint flags of profile-iop, as libwebrtc classifies them); undefined for profiles
 * browsers do not use. The level (third byte) is left out on purpose: the SFU does not
 * transcode, and browsers offer level-asymmetry-allowed.
 */
function h264Profile(profileLevelId: string | undefined): string | undefined {
  if (!profileLevelId || !/^[0-9a-f]{6}$/.test(profileLevelId)) return undefined;
  const idc = parseInt(profileLevelId.slice(0, 2), 16);
  const iop = parseInt(profileLevelId.slice(2, 4), 16);
  if (idc === 0x42) return iop & 0x40 ? 'constrained-baseline' : 'baseline';
  if (idc === 0x4d) return iop & 0x80 ? 'constrained-baseline' : 'main';
  if (idc === 0x64) {
    if ((iop & 0x0c) === 0x0c) return 'constrained-high';
    return 'high';
  }
  if (idc === 0xf4) return 'high-444';
  return undefined;
}

/** The H.264 parameters that must match: profile and packetization mode (default 0). */
function h264Key(c: RtpCodec | CodecChoice): string | undefined {
  const p = fmtpParams(c.fmtp);
  const profile = h264Profile(p.get('profile-level-id') ?? '42001f');
  return profile && `${profile}/${p.get('packetization-mode') ?? '0'}`;
}

/** The canonical name of an offered codec Chorus forwards, or undefined. */
function forwardable(kind: string, c: RtpCodec): CodecName | undefined {
  if (kind === 'audio') return c.name.toLowerCase() === 'opus' && c.clockRate === 48000 ? 'opus' : undefined;
  if (kind !== 'video' || c.clockRate !== 90000) return undefined;
  const name = c.name.toUpperCase();
  if (name === 'VP8' || name === 'VP9' || name === 'AV1') return name;
  if (name === 'H264' && h264Key(c) !== undefined) return 'H264';
  return undefined;
}

/**
 * True when a decoder offering `c` can take what an encoder negotiated as `as` sends:
 * same codec and the format parameters that change the bitstream (RFC 6184 8.2.2 for
 * H.264: profile and packetization mode; VP9 profile-id; AV1 profile) agree.
 */
export function sameFormat(c: RtpCodec | CodecChoice, as: CodecChoice): boolean {
  const a = fmtpParams(c.fmtp);
  const b = fmtpParams(as.fmtp);
  switch (as.name) {
    case 'opus':
    case 'VP8':
      return true;
    case 'VP9':
      return (a.get('profile-id') ?? '0') === (b.get('profile-id') ?? '0');
    case 'AV1':
      return (a.get('profile') ?? '0') === (b.get('profile') ?? '0');
    case 'H264':
      return h264Key(c) === h264Key(as);
  }
}

/**
 * Within one codec, which of several offered formats a room prefers: VP9 profile 0 and
 * AV1 main profile (what every decoder takes), H.264 constrained baseline in
 * packetization mode 1 (the only one every browser decodes, and it allows large frames).
 */
function formatRank(c: CodecChoice): number {
  const p = fmtpParams(c.fmtp);
  switch (c.name) {
    case 'VP9':
      return Number(p.get('profile-id') ?? '0');
    case 'AV1':
      return Number(p.get('profile') ?? '0');
    case 'H264': {
      const order = ['constrained-baseline', 'baseline', 'main', 'constrained-high', 'high', 'high-444'];
      const [profile, mode] = (h264Key(c) ?? '').split('/');
      return order.indexOf(profile ?? '') + (mode === '1' ? 0 : order.length);
    }
    case 'opus':
    case 'VP8':
      return 0;
  }
}

function asChoice(kind: string, c: RtpCodec, name: CodecName): CodecChoice {
  return { kind: kind as MediaKind, name, payloadType: c.payloadType, clockRate: c.clockRate, fmtp: c.fmtp };
}

/**
 * The codec a section should carry: with `require`, the offered format that matches it
 * (a room's codec, a published track's); else the first of `preference` the offer has
 * (opus for audio), in its preferred format. Undefined when the offer has none of them.
 */
export function chooseCodec(
  kind: string,
  offered: readonly RtpCodec[],
  require?: CodecChoice,
  preference: readonly VideoCodecName[] = DEFAULT_VIDEO_CODECS,
): CodecChoice | undefined {
  const candidates: CodecChoice[] = [];
  for (const c of offered) {
    const name = forwardable(kind, c);
    if (name) candidates.push(asChoice(kind, c, name));
  }
  if (require) return candidates.find((c) => c.name === require.name && sameFormat(c, require));
  if (kind === 'audio') return candidates[0];
  for (const name of preference) {
    const best = candidates.filter((c) => c.name === name).sort((x, y) => formatRank(x) - formatRank(y))[0];
    if (best) return best;
  }
  return undefined;
}

/** A codec as people read it: `H264 (packetization-mode=1;profile-level-id=42e01f)`. */
export function describeCodec(c: CodecChoice): string {
  return c.fmtp ? `${c.name} (${c.fmtp})` : c.name;
}
