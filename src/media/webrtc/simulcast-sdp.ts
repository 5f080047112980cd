import { parseSdp, writeSdp, type MediaSection } from './sdp.js';

export const MID_EXTENSION = 'urn:ietf:params:rtp-hdrext:sdes:mid';
export const RID_EXTENSION = 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id';
export const REPAIRED_RID_EXTENSION = 'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id';
const KEPT_EXTENSIONS = [MID_EXTENSION, RID_EXTENSION, REPAIRED_RID_EXTENSION];

/** Rids and SSRCs are at most this many per section: three layers is what clients send. */
export const MAX_LAYERS = 4;

/**
 * What a publisher's media section says of its simulcast layers, in the offer's order
 * (RFC 8853 `a=simulcast:send` with `a=rid`, or an `a=ssrc-group:SIM` of SSRCs as older
 * Chromium and some native clients send): which lines the section keeps through the codec
 * filter so libdatachannel's answer accepts the layers, and what tells a packet's layer.
 */
export interface SimulcastOffer {
  /** The rids, in the order of `a=simulcast:send` (first alternative of each). */
  rids: string[];
  /** The SSRCs of `a=ssrc-group:SIM`, in order. */
  ssrcs: number[];
  /** The extmap id of the rtp-stream-id extension; 0 when not offered. */
  ridExtension: number;
  /** The lines kept in the section besides the codec's. */
  lines: string[];
  /** The section lists its SSRCs (`a=ssrc`): libdatachannel can route them (see routable). */
  ssrcsSignalled: boolean;
}

const RID = /^[A-Za-z0-9_-]{1,16}$/;

/** The section's simulcast, or undefined when it sends one encoding. */
export function readSimulcast(m: MediaSection): SimulcastOffer | undefined {
  const out: SimulcastOffer = {
    rids: [],
    ssrcs: [],
    ridExtension: 0,
    lines: [],
    ssrcsSignalled: m.lines.some((l) => /^a=ssrc:\d+ /.test(l)),
  };
  const ridLines = new Map<string, string>();
  for (const line of m.lines) {
    const ext = /^a=extmap:(\d+)(?:\/\w+)? (\S+)/.exec(line);
    if (ext && KEPT_EXTENSIONS.includes(ext[2]!)) {
      out.lines.push(line);
      if (ext[2] === RID_EXTENSION) out.ridExtension = Number(ext[1]);
      continue;
    }
    const sim = /^a=simulcast:send (\S+)/.exec(line);
    if (sim) {
      for (const stream of sim[1]!.split(';')) {
        const rid = stream.split(',')[0]!.replace(/^~/, '');
        if (RID.test(rid) && !out.rids.includes(rid)) out.rids.push(rid);
      }
      continue;
    }
    const rid = /^a=rid:(\S+) send\b/.exec(line);
    if (rid && RID.test(rid[1]!)) ridLines.set(rid[1]!, `a=rid:${rid[1]} send`);
    const group = /^a=ssrc-group:SIM((?: \d+)+)$/.exec(line);
    if (group) out.ssrcs = group[1]!.trim().split(' ').map(Number);
  }
  // Rids without their a=rid line are not declared (RFC 8853 5.1): left out.
  out.rids = out.rids.filter((r) => ridLines.has(r)).slice(0, MAX_LAYERS);
  out.ssrcs = out.ssrcs.filter((s) => s > 0 && s <= 0xffffffff).slice(0, MAX_LAYERS);
  if (out.rids.length >= 2 && out.ridExtension > 0) {
    out.ssrcs = [];
    for (const r of out.rids) out.lines.push(ridLines.get(r)!);
    out.lines.push(`a=simulcast:send ${out.rids.join(';')}`);
    return out;
  }
  if (out.ssrcs.length >= 2) {
    out.rids = [];
    out.lines.push(`a=ssrc-group:SIM ${out.ssrcs.join(' ')}`);
    return out;
  }
  return undefined;
}

/**
 * False when libdatachannel would drop the layers: it routes incoming RTP to a track by
 * the SSRCs the offer lists (it does not read the MID or RID header extension), except
 * when the connection has a single media section, which gets every packet. Chromium lists
 * no SSRC for rid layers, so rid simulcast works alone on its connection, or from a client
 * that lists its layers' SSRCs.
 */
export function routable(s: SimulcastOffer, mediaSections: number): boolean {
  return s.rids.length === 0 || s.ssrcsSignalled || mediaSections <= 1;
}

/** Puts the simulcast lines back into a section the codec filter has cleaned. */
export function keepSimulcast(m: MediaSection, s: SimulcastOffer): void {
  m.lines.push(...s.lines);
}

/**
 * The answer as the publisher must read it: libdatachannel copies the offer's rids and
 * `a=simulcast` into its answer as they were (`send`), so each section that simulcasts by
 * rid gets `a=rid:<rid> recv` and one `a=simulcast:recv` instead (RFC 8853 5.3); SSRC
 * simulcast needs nothing in the answer.
 */
export function answerSimulcast(answer: string, offers: ReadonlyMap<string, SimulcastOffer>): string {
  const parsed = parseSdp(answer);
  for (const m of parsed.media) {
    const s = offers.get(m.mid);
    if (!s) continue;
    // libdatachannel copies the offer's groups too: SSRCs the answer does not send.
    m.lines = m.lines.filter((l) => !/^a=(rid|simulcast|ssrc-group):/.test(l));
    if (s.rids.length === 0) continue;
    for (const r of s.rids) m.lines.push(`a=rid:${r} recv`);
    m.lines.push(`a=simulcast:recv ${s.rids.join(';')}`);
  }
  return writeSdp(parsed);
}
