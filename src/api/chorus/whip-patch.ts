import { ChorusError } from '../../core/errors.js';
import { candidateLine, MAX_REMOTE_CANDIDATES } from '../../media/webrtc/remote-candidates.js';

/** The content type of a WHIP/WHEP `PATCH` (RFC 8840, RFC 9725 4.3). */
export const TRICKLE_ICE_SDPFRAG = 'application/trickle-ice-sdpfrag';

/** What a trickle ICE `PATCH` body says. */
export interface IceFragment {
  /** The ICE credentials it names (`a=ice-ufrag`, `a=ice-pwd`), if any. */
  ufrag: string | undefined;
  pwd: string | undefined;
  /** Its candidates (`candidate:...`), each with the `a=mid` of its `m=` section. */
  candidates: Array<{ candidate: string; mid: string | undefined }>;
  /** `a=end-of-candidates`: the client has no more. */
  end: boolean;
}

const ICE_CHAR = /^[A-Za-z0-9+/]{1,256}$/;

/**
 * Parses an `application/trickle-ice-sdpfrag` body (RFC 8840): session-level ICE
 * credentials, then `m=` sections with `a=mid`, `a=candidate` and `a=end-of-candidates`
 * lines. Other attributes are ignored, as RFC 8840 allows; a malformed candidate or
 * credential, or anything that is not an SDP line, is ChorusError `invalid_argument` (400).
 */
export function parseIceFragment(body: string): IceFragment {
  const frag: IceFragment = { ufrag: undefined, pwd: undefined, candidates: [], end: false };
  let mid: string | undefined;
  for (const raw of body.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (line === '') continue;
    if (!/^[a-z]=/.test(line)) throw malformed(`not an SDP line: ${line.slice(0, 40)}`);
    if (line.startsWith('m=')) mid = undefined;
    else if (line.startsWith('a=mid:')) mid = line.slice(6).trim();
    else if (line.startsWith('a=ice-ufrag:')) frag.ufrag = credential(line.slice(12));
    else if (line.startsWith('a=ice-pwd:')) frag.pwd = credential(line.slice(10));
    else if (line === 'a=end-of-candidates') frag.end = true;
    else if (line.startsWith('a=candidate:')) {
      if (frag.candidates.length >= MAX_REMOTE_CANDIDATES)
        throw malformed(`more than ${MAX_REMOTE_CANDIDATES} candidates`);
      frag.candidates.push({ candidate: candidateLine(line), mid });
    }
  }
  return frag;
}

function credential(value: string): string {
  const v = value.trim();
  if (!ICE_CHAR.test(v)) throw malformed('malformed ice-ufrag or ice-pwd');
  return v;
}

const malformed = (why: string): ChorusError =>
  new ChorusError('invalid_argument', `malformed trickle-ice-sdpfrag: ${why}`);

/** The offer's ICE username fragment (session level or its first section's). */
export function offerUfrag(offer: string): string | undefined {
  return /^a=ice-ufrag:(\S+)/m.exec(offer)?.[1];
}
