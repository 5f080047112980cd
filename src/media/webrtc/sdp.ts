import { ChorusError } from '../../core/errors.js';

/**
 * Just enough SDP to apply the codec policy: split an offer into media sections, read
 * each section's codecs, rewrite the section. Line-based on purpose: the rest of the
 * offer (ICE, DTLS, BUNDLE) passes through untouched to libdatachannel.
 */
export type MediaKind = 'audio' | 'video';

export interface RtpCodec {
  payloadType: number;
  name: string; // as written: VP8, H264, opus, ...
  clockRate: number;
  channels: number | undefined;
  fmtp: string | undefined;
}

export interface MediaSection {
  kind: string;
  mid: string;
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  codecs: RtpCodec[];
  lines: string[];
}

export interface ParsedSdp {
  session: string[];
  media: MediaSection[];
}

export function parseSdp(sdp: string): ParsedSdp {
  if (typeof sdp !== 'string' || !sdp.startsWith('v=0'))
    throw new ChorusError('invalid_sdp', 'not an SDP description (expected "v=0" first)');
  const lines = sdp.split(/\r?\n/).filter((l) => l !== '');
  const session: string[] = [];
  const media: MediaSection[] = [];
  let current: string[] | undefined;
  for (const line of lines) {
    if (line.startsWith('m=')) {
      current = [line];
      media.push({ kind: '', mid: '', direction: 'sendrecv', codecs: [], lines: current });
    } else if (current) current.push(line);
    else session.push(line);
  }
  for (const m of media) readSection(m);
  if (media.length === 0) throw new ChorusError('invalid_sdp', 'the description has no media sections');
  return { session, media };
}

function readSection(m: MediaSection): void {
  const mline = m.lines[0]!.split(' ');
  m.kind = mline[0]!.slice(2);
  const pts = mline.slice(3).map(Number);
  const byPt = new Map<number, RtpCodec>();
  for (const line of m.lines) {
    if (line.startsWith('a=mid:')) m.mid = line.slice(6).trim();
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line))
      m.direction = line.slice(2) as MediaSection['direction'];
    else if (line.startsWith('a=rtpmap:')) {
      const match = /^a=rtpmap:(\d+) ([^/]+)\/(\d+)(?:\/(\d+))?/.exec(line);
      if (match) {
        byPt.set(Number(match[1]), {
          payloadType: Number(match[1]),
          name: match[2]!,
          clockRate: Number(match[3]),
          channels: match[4] ? Number(match[4]) : undefined,
          fmtp: undefined,
        });
      }
    }
  }
  for (const line of m.lines) {
    const f = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (f) {
      const c = byPt.get(Number(f[1]));
      if (c) c.fmtp = f[2];
    }
  }
  m.codecs = pts.map((pt) => byPt.get(pt)).filter((c): c is RtpCodec => c !== undefined);
}

export function writeSdp(p: ParsedSdp): string {
  return [...p.session, ...p.media.flatMap((m) => m.lines)].join('\r\n') + '\r\n';
}

/** The a=ssrc lines' SSRCs that are retransmission (FID) companions. */
function rtxSsrcs(lines: string[]): Set<string> {
  const out = new Set<string>();
  for (const l of lines) {
    const g = /^a=ssrc-group:FID (\d+) (\d+)/.exec(l);
    if (g) out.add(g[2]!);
  }
  return out;
}

/** What keepOnlyCodec keeps besides the codec: its companions, some header extensions. */
export interface KeptWithCodec {
  /** Companion payload types (RTX, RED), in this order after the codec. */
  payloadTypes?: readonly number[];
  /**
   * One of them to list before the codec: the answer then lists it first, which is what
   * makes a browser send Opus RED (it sends RED only when listed before Opus).
   */
  leading?: number;
  /** Header extension URIs (`a=extmap`) to keep. */
  extensions?: readonly string[];
  /**
   * Keep the RTX SSRCs' `a=ssrc` lines, so libdatachannel routes the retransmissions to
   * the track. The `a=ssrc-group:FID` lines go all the same: libdatachannel would copy
   * them into its answer, naming SSRCs the answer does not have.
   */
  rtxSsrcs?: boolean;
}

/**
 * Keeps one codec in a section and removes what Chorus does not forward: other codecs
 * (RED, RTX, FEC, ...), header extensions, transport-cc feedback, simulcast, RTX SSRCs;
 * except what `keep` names (#18: RTX, RED, the audio level).
 */
export function keepOnlyCodec(m: MediaSection, codec: RtpCodec, keep: KeptWithCodec = {}): void {
  const pt = String(codec.payloadType);
  const pts = new Set([pt, ...(keep.payloadTypes ?? []).map(String)]);
  const rtx = rtxSsrcs(m.lines);
  const mline = m.lines[0]!.split(' ');
  const order = [...pts].filter((p) => p !== String(keep.leading));
  if (keep.leading !== undefined && pts.has(String(keep.leading))) order.unshift(String(keep.leading));
  const out = [[...mline.slice(0, 3), ...order].join(' ')];
  for (const line of m.lines.slice(1)) {
    const ptLine = /^a=(rtpmap|fmtp|rtcp-fb):(\d+|\*) ?(.*)$/.exec(line);
    if (ptLine) {
      if (!pts.has(ptLine[2]!)) continue;
      if (ptLine[1] === 'rtcp-fb' && /transport-cc/.test(ptLine[3] ?? '')) continue;
      out.push(line);
      continue;
    }
    const ext = /^a=extmap:\d+(?:\/\w+)? (\S+)/.exec(line);
    if (ext && keep.extensions?.includes(ext[1]!)) {
      out.push(line);
      continue;
    }
    if (/^a=(extmap|extmap-allow-mixed|simulcast|rid|ssrc-group)/.test(line)) continue;
    const ssrc = /^a=ssrc:(\d+) /.exec(line);
    if (ssrc && rtx.has(ssrc[1]!) && !keep.rtxSsrcs) continue;
    out.push(line);
  }
  m.lines = out;
  m.codecs = [
    codec,
    ...m.codecs.filter((c) => String(c.payloadType) !== pt && pts.has(String(c.payloadType))),
  ];
}

/** Marks a section rejected (port 0): nothing usable in it. */
export function rejectSection(m: MediaSection): void {
  const mline = m.lines[0]!.split(' ');
  mline[1] = '0';
  m.lines[0] = mline.join(' ');
  m.codecs = [];
}

/** Replaces the address of host candidates (and c= lines) with the announced one. */
export function announceAddress(sdp: string, address: string): string {
  return sdp
    .split('\r\n')
    .map((line) => {
      if (line.startsWith('a=candidate:')) {
        const parts = line.split(' ');
        if (parts[7] === 'host') parts[4] = address;
        return parts.join(' ');
      }
      if (line.startsWith('c=IN IP4 ') && !line.endsWith('0.0.0.0'))
        return `c=IN ${address.includes(':') ? 'IP6' : 'IP4'} ${address}`;
      return line;
    })
    .join('\r\n');
}

/**
 * The offer as the SFU's own libdatachannel reads it: without the offerer's candidates, so
 * the SFU never sends the first connectivity check and learns the offerer's address from
 * the offerer's own checks (peer-reflexive), as an ICE-lite server (mediasoup, Janus)
 * does. Why (#18.7): a libdatachannel offerer (node-datachannel, WHIP tools, load
 * generators) hands the answer to its ICE agent before it stores the answer's DTLS
 * fingerprint. When the SFU had already checked the offerer's candidates, ICE connected
 * inside that call and the DTLS handshake could verify the SFU's certificate against no
 * fingerprint: "certificate verify failed" for 3.8 % of such subscribers under load
 * (about 11 % in test/integration/ndc-first-attempt.test.ts on a loaded box). Waiting for
 * the offerer's checks puts a network round trip between its answer and its handshake.
 * (Answering `setup:passive` instead made it worse: the offerer then opens DTLS itself the
 * moment ICE connects.) Only what libdatachannel is given changes; the answer's own
 * candidates are untouched, and nothing else of the offer is altered.
 */
export function offerWithoutCandidates(offer: string): string {
  return offer.replace(/^a=(candidate:|end-of-candidates).*(\r?\n|$)/gm, '');
}
