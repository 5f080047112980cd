import { ChorusError } from '../../core/errors.js';
import { parseSdp, type ParsedSdp } from './sdp.js';

/**
 * Checks a client's session description before anything else reads it. libdatachannel
 * refuses much of what is wrong here with an exception whose text quotes the client's
 * line (or accepts it and misbehaves later: an SSRC above 2^32 is silently wrapped, two
 * sections with one mid confuse the forwarding); checking first gives the client a 400
 * that names the problem, and the server a warn line of bounded size.
 *
 * The rules are what every browser's and libdatachannel's offer already follow (RFC 8866
 * syntax, RFC 8839 ICE attributes, RFC 8122 fingerprints), so no real client is refused.
 */

/** More media sections than any conference leg needs (a browser offers one per track). */
const MAX_MEDIA_SECTIONS = 64;
/** SDP lines are short (the longest browser lines are fmtp and candidates, < 300 chars). */
const MAX_LINE_CHARS = 4096;
const MAX_LINES = 10_000;
const UINT32_MAX = 0xffffffff;

/** Digest lengths, in bytes, of the fingerprint hashes libdatachannel can check. */
const FINGERPRINT_BYTES: Readonly<Record<string, number>> = {
  'sha-1': 20,
  'sha-224': 28,
  'sha-256': 32,
  'sha-384': 48,
  'sha-512': 64,
};

/** Client text quoted in a message or a log line: at most `max` characters, one line. */
export function clip(text: string, max = 60): string {
  // Control characters (newlines above all) would make one log line look like several.
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max)}…` : flat);
}

const ICE_CHARS = /^[A-Za-z0-9+/]+$/;
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
const DIGITS = /^\d{1,15}$/;

/** A decimal integer in [min, max], or undefined. */
function integer(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !DIGITS.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

function isIpv4Like(address: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(address);
}

function validAddress(address: string): boolean {
  if (isIpv4Like(address)) return address.split('.').every((o) => integer(o, 0, 255) !== undefined);
  if (address.length > 253) return false;
  // IPv6 (maybe with a zone), or a host name (browsers hide local addresses behind mDNS
  // `<uuid>.local`).
  if (address.includes(':')) return /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/.test(address);
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(address);
}

/** What is wrong with one `a=candidate:` value (after the prefix), or undefined. */
function candidateProblem(value: string): string | undefined {
  const f = value.trim().split(/\s+/);
  if (f.length < 8 || f[6] !== 'typ')
    return 'expected "<foundation> <component> <transport> <priority> <address> <port> typ <type>"';
  if (f[0]!.length > 32 || !ICE_CHARS.test(f[0]!)) return 'bad foundation';
  if (integer(f[1], 1, 256) === undefined) return 'bad component';
  if (!/^(udp|tcp)$/i.test(f[2]!)) return 'transport must be UDP or TCP';
  if (integer(f[3], 0, UINT32_MAX) === undefined) return 'priority must be 0 to 2^32-1';
  if (!validAddress(f[4]!)) return 'bad address';
  if (integer(f[5], 0, 65535) === undefined) return 'port must be 0 to 65535';
  if (!/^(host|srflx|prflx|relay)$/.test(f[7]!)) return 'type must be host, srflx, prflx or relay';
  return undefined;
}

/** What is wrong with one attribute line (`a=name:value`), or undefined. */
function attributeProblem(name: string, value: string | undefined, isRtp: boolean): string | undefined {
  const v = value ?? '';
  switch (name) {
    case 'ice-ufrag':
      return v.length >= 4 && v.length <= 256 && ICE_CHARS.test(v)
        ? undefined
        : 'ice-ufrag must be 4 to 256 ICE characters';
    case 'ice-pwd':
      return v.length >= 22 && v.length <= 256 && ICE_CHARS.test(v)
        ? undefined
        : 'ice-pwd must be 22 to 256 ICE characters';
    case 'fingerprint': {
      const m = /^(\S+) ([0-9A-Fa-f:]+)$/.exec(v);
      const bytes = m ? FINGERPRINT_BYTES[m[1]!.toLowerCase()] : undefined;
      if (!m || bytes === undefined)
        return 'fingerprint must be "sha-256 XX:XX:..." (sha-1, sha-224, sha-256, sha-384 or sha-512)';
      return m[2]!.length === bytes * 3 - 1 && /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$/.test(m[2]!)
        ? undefined
        : `a ${m[1]!.toLowerCase()} fingerprint is ${bytes} hex bytes separated by colons`;
    }
    case 'setup':
      return /^(actpass|active|passive|holdconn)$/.test(v)
        ? undefined
        : 'setup must be actpass, active, passive or holdconn';
    case 'mid':
      return v.length >= 1 && v.length <= 64 && TOKEN.test(v)
        ? undefined
        : 'mid must be 1 to 64 token characters';
    case 'candidate': {
      const p = candidateProblem(v);
      return p && `bad candidate (${p})`;
    }
    case 'ssrc':
      return integer(/^(\d+)(?: |$)/.exec(v)?.[1], 0, UINT32_MAX) === undefined
        ? 'ssrc must be 0 to 2^32-1'
        : undefined;
    case 'ssrc-group': {
      const ids = v.split(' ').slice(1);
      return ids.length > 0 && ids.every((id) => integer(id, 0, UINT32_MAX) !== undefined)
        ? undefined
        : 'ssrc-group must list SSRCs of 0 to 2^32-1';
    }
    case 'rtpmap': {
      const m = /^(\d+) [^/\s]+\/(\d+)(?:\/(\d+))?$/.exec(v);
      return m &&
        integer(m[1], 0, 127) !== undefined &&
        integer(m[2], 1, UINT32_MAX) !== undefined &&
        (m[3] === undefined || integer(m[3], 1, 255) !== undefined)
        ? undefined
        : 'rtpmap must be "<payload type 0-127> <codec>/<clock rate>[/<channels>]"';
    }
    case 'fmtp':
    case 'rtcp-fb': {
      const pt = /^(\d+|\*)(?: |$)/.exec(v)?.[1];
      if (pt === '*' && name === 'rtcp-fb') return undefined;
      return isRtp && integer(pt, 0, 127) === undefined
        ? `${name} must start with a payload type 0-127`
        : undefined;
    }
    case 'extmap':
      return integer(/^(\d+)(?:\/\w+)? \S/.exec(v)?.[1], 1, 255) === undefined
        ? 'extmap must be "<id 1-255> <uri>"'
        : undefined;
    case 'sctp-port':
      return integer(v, 0, 65535) === undefined ? 'sctp-port must be 0 to 65535' : undefined;
    case 'max-message-size':
      return integer(v, 0, Number.MAX_SAFE_INTEGER) === undefined
        ? 'max-message-size must be an integer'
        : undefined;
    default:
      return undefined;
  }
}

/** What is wrong with an `m=` line, or undefined; `rtp` says whether formats are payload types. */
function mediaLineProblem(line: string): { problem?: string; rtp: boolean } {
  const m = /^m=([a-z]+) (\d+)(?:\/(\d+))? (\S+)((?: \S+)+)$/.exec(line);
  if (!m) return { problem: 'expected "m=<media> <port> <proto> <formats>"', rtp: false };
  if (integer(m[2], 0, 65535) === undefined) return { problem: 'port must be 0 to 65535', rtp: false };
  const rtp = m[4]!.includes('RTP');
  if (
    rtp &&
    !m[5]!
      .trim()
      .split(' ')
      .every((pt) => integer(pt, 0, 127) !== undefined)
  ) {
    return { problem: 'RTP formats must be payload types 0-127', rtp };
  }
  return { rtp };
}

/**
 * What is wrong with a session description offered by a client, as one sentence naming
 * the line (client text clipped), or undefined when it may be handed to libdatachannel.
 */
export function sdpProblem(sdp: unknown): string | undefined {
  if (typeof sdp !== 'string' || !sdp.startsWith('v=0'))
    return 'not an SDP description (expected "v=0" first)';
  const lines = sdp.split('\n');
  if (lines.length > MAX_LINES) return `the description has more than ${MAX_LINES} lines`;
  let sections = 0;
  let isRtp = false;
  let ufrag = false;
  let pwd = false;
  let fingerprint = false;
  const mids = new Set<string>();
  let sectionMid: string | undefined;
  const endSection = (): string | undefined => {
    if (sections === 0) return undefined;
    if (sectionMid === undefined) return `media section ${sections} has no a=mid`;
    if (mids.has(sectionMid)) return `media sections share the mid ${clip(sectionMid)}`;
    mids.add(sectionMid);
    return undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (line === '') continue;
    const at = `line ${i + 1}`;
    if (line.length > MAX_LINE_CHARS) return `${at} is longer than ${MAX_LINE_CHARS} characters`;
    if (!/^[a-z]=/.test(line)) return `${at} is not an SDP line (<letter>=<value>): ${clip(line)}`;
    if (line.startsWith('m=')) {
      const ended = endSection();
      if (ended) return ended;
      if (++sections > MAX_MEDIA_SECTIONS) return `more than ${MAX_MEDIA_SECTIONS} media sections`;
      const m = mediaLineProblem(line);
      if (m.problem) return `${at}: ${m.problem}: ${clip(line)}`;
      isRtp = m.rtp;
      sectionMid = undefined;
      continue;
    }
    if (!line.startsWith('a=')) continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line.slice(2) : line.slice(2, colon);
    const value = colon < 0 ? undefined : line.slice(colon + 1);
    const problem = attributeProblem(name, value, isRtp);
    if (problem) return `${at}: ${problem}: ${clip(line)}`;
    if (name === 'ice-ufrag') ufrag = true;
    else if (name === 'ice-pwd') pwd = true;
    else if (name === 'fingerprint') fingerprint = true;
    else if (name === 'mid' && sections > 0) {
      if (sectionMid !== undefined) return `${at}: a second a=mid in one media section`;
      sectionMid = value;
    }
  }
  const ended = endSection();
  if (ended) return ended;
  if (sections === 0) return 'the description has no media sections';
  if (!ufrag || !pwd) return 'the description has no ICE credentials (a=ice-ufrag and a=ice-pwd)';
  if (!fingerprint) return 'the description has no DTLS fingerprint (a=fingerprint)';
  return undefined;
}

/** Validates a client's offer and splits it into sections; throws `invalid_sdp` naming the problem. */
export function parseOffer(sdp: string): ParsedSdp {
  const problem = sdpProblem(sdp);
  if (problem) throw new ChorusError('invalid_sdp', problem);
  return parseSdp(sdp);
}
