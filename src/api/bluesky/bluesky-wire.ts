import { gunzipSync, gzipSync } from 'node:zlib';

/**
 * The Blue Sky signal encoding (pion's example format): `{"sdp": base64([gzip](json(
 * {type, sdp})))}`. Chorus also accepts a plain `{"type":"offer","sdp":"v=0..."}` and
 * answers every request in the encoding it came in.
 */
export interface SignalEncoding {
  kind: 'base64' | 'plain';
  gzip: boolean;
  /** The body key the request used (`sdp`, or the Go binding's `Sdp`). */
  key: string;
}

export interface DecodedOffer {
  type: string;
  sdp: string;
  encoding: SignalEncoding;
}

export class SignalBodyError extends Error {}

export function decodeOffer(body: unknown): DecodedOffer {
  if (body === null || typeof body !== 'object') throw new SignalBodyError('expected a JSON object body');
  const b = body as Record<string, unknown>;
  if (typeof b.type === 'string' && typeof b.sdp === 'string' && b.sdp.startsWith('v=0')) {
    return { type: b.type, sdp: b.sdp, encoding: { kind: 'plain', gzip: false, key: 'sdp' } };
  }
  const key = typeof b.sdp === 'string' ? 'sdp' : typeof b.Sdp === 'string' ? 'Sdp' : undefined;
  if (!key) throw new SignalBodyError('expected {"sdp": "<base64 session description>"}');
  const raw = Buffer.from(b[key] as string, 'base64');
  if (raw.length === 0) throw new SignalBodyError('sdp is not base64');
  const gzip = raw[0] === 0x1f && raw[1] === 0x8b;
  let json: unknown;
  try {
    json = JSON.parse((gzip ? gunzipSync(raw) : raw).toString('utf8'));
  } catch {
    throw new SignalBodyError('sdp is not base64 of a (gzipped) JSON session description');
  }
  const d = json as { type?: unknown; sdp?: unknown };
  if (typeof d.type !== 'string' || typeof d.sdp !== 'string') {
    throw new SignalBodyError('the session description needs string "type" and "sdp"');
  }
  return { type: d.type, sdp: d.sdp, encoding: { kind: 'base64', gzip, key } };
}

export function encodeAnswer(sdp: string, encoding: SignalEncoding): Record<string, string> {
  const desc = { type: 'answer', sdp };
  if (encoding.kind === 'plain') return desc;
  const json = Buffer.from(JSON.stringify(desc));
  return { [encoding.key]: (encoding.gzip ? gzipSync(json) : json).toString('base64') };
}
