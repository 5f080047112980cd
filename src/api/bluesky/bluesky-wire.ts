import { gunzip, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { ChorusError } from '../../core/errors.js';

const gunzipAsync = promisify(gunzip);

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

const tooLarge = (maxBytes: number) =>
  new ChorusError('too_large', `the session description is larger than ${maxBytes} bytes`);

/**
 * Decodes an offer body; a body that is not one is `invalid_argument`, one too large
 * `too_large`. The gzip a client sends is inflated off the event loop (zlib's
 * thread pool) and stops at `maxBytes`: 600 KB of gzip can inflate to 450 MiB, which
 * inflated synchronously stalls every call on the server for seconds.
 */
export async function decodeOffer(body: unknown, maxBytes: number): Promise<DecodedOffer> {
  if (body === null || typeof body !== 'object')
    throw new ChorusError('invalid_argument', 'expected a JSON object body');
  const b = body as Record<string, unknown>;
  if (typeof b.type === 'string' && typeof b.sdp === 'string' && b.sdp.startsWith('v=0')) {
    if (Buffer.byteLength(b.sdp) > maxBytes) throw tooLarge(maxBytes);
    return { type: b.type, sdp: b.sdp, encoding: { kind: 'plain', gzip: false, key: 'sdp' } };
  }
  const key = typeof b.sdp === 'string' ? 'sdp' : typeof b.Sdp === 'string' ? 'Sdp' : undefined;
  if (!key) throw new ChorusError('invalid_argument', 'expected {"sdp": "<base64 session description>"}');
  const raw = Buffer.from(b[key] as string, 'base64');
  if (raw.length === 0) throw new ChorusError('invalid_argument', 'sdp is not base64');
  const gzip = raw[0] === 0x1f && raw[1] === 0x8b;
  // The JSON wrapper adds a few bytes to the description itself.
  const maxJson = maxBytes + 1024;
  let text: Buffer = raw;
  if (gzip) {
    try {
      text = await gunzipAsync(raw, { maxOutputLength: maxJson });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBytes);
      throw new ChorusError('invalid_argument', 'sdp is not base64 of a (gzipped) JSON session description');
    }
  }
  if (text.length > maxJson) throw tooLarge(maxBytes);
  let json: unknown;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch {
    throw new ChorusError('invalid_argument', 'sdp is not base64 of a (gzipped) JSON session description');
  }
  if (json === null || typeof json !== 'object') {
    throw new ChorusError('invalid_argument', 'the session description needs string "type" and "sdp"');
  }
  const d = json as { type?: unknown; sdp?: unknown };
  if (typeof d.type !== 'string' || typeof d.sdp !== 'string') {
    throw new ChorusError('invalid_argument', 'the session description needs string "type" and "sdp"');
  }
  if (Buffer.byteLength(d.sdp) > maxBytes) throw tooLarge(maxBytes);
  return { type: d.type, sdp: d.sdp, encoding: { kind: 'base64', gzip, key } };
}

export function encodeAnswer(sdp: string, encoding: SignalEncoding): Record<string, string> {
  const desc = { type: 'answer', sdp };
  if (encoding.kind === 'plain') return desc;
  const json = Buffer.from(JSON.stringify(desc));
  return { [encoding.key]: (encoding.gzip ? gzipSync(json) : json).toString('base64') };
}
