import { createHash, createPublicKey, ECDH, generateKeyPairSync, randomInt, verify } from 'node:crypto';
import { createRequire } from 'node:module';
import { loadOnce } from '../../lib/load-once.js';

/**
 * Standalone identity: a user is an ECDSA P-256 public key, written as the hex of its
 * compressed SEC1 point (33 bytes) as the original gostream clients send it.
 */
export interface PublicKey {
  /** Lowercase hex of the compressed point: the user's id on the wire. */
  readonly id: string;
  readonly compressed: Uint8Array;
}

const COMPRESSED_HEX = /^0[23][0-9a-fA-F]{64}$/;

/** Parses and validates a compressed key (on the curve); undefined when it is not one. */
export function parsePublicKey(hex: unknown): PublicKey | undefined {
  if (typeof hex !== 'string' || !COMPRESSED_HEX.test(hex)) return undefined;
  try {
    // Decompressing checks that the point is on the curve.
    ECDH.convertKey(hex, 'prime256v1', 'hex', 'hex', 'uncompressed');
  } catch {
    return undefined;
  }
  const id = hex.toLowerCase();
  return { id, compressed: Buffer.from(id, 'hex') };
}

const SIGNATURE_HEX = /^(?:[0-9a-fA-F]{2}){8,80}$/;

/**
 * Whether `signatureHex` is `key`'s signature of `challenge`. Accepted forms (see
 * docs/voip.md): the original's, ECDSA over the challenge's UTF-8 bytes used directly
 * as the digest (what `elliptic`'s `key.sign(bytes)` does), and the standard ECDSA with
 * SHA-256 (what WebCrypto does); each as ASN.1 DER or as 64-byte r||s (WebCrypto's
 * output). An empty challenge never verifies.
 */
export function verifyChallenge(key: PublicKey, challenge: string, signatureHex: unknown): boolean {
  if (challenge.length === 0 || typeof signatureHex !== 'string' || !SIGNATURE_HEX.test(signatureHex))
    return false;
  const signature = Buffer.from(signatureHex, 'hex');
  const message = Buffer.from(challenge, 'utf8');
  const format = signature.length === 64 ? 'compact' : 'der';
  // WebCrypto's r||s is nearly always over SHA-256, the original's DER over the raw
  // challenge: try the likely form first (each verification costs about a millisecond).
  for (const prehash of format === 'compact' ? [true, false] : [false, true]) {
    try {
      if (
        prehash ? verifySha256(key, message, signature, format) : verifyRaw(key, message, signature, format)
      )
        return true;
    } catch {
      // Malformed DER or out-of-range scalars: not a signature.
    }
  }
  return false;
}

/** SubjectPublicKeyInfo of a P-256 key, up to its compressed point. */
const SPKI_P256_COMPRESSED = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');

/**
 * ECDSA with SHA-256 through OpenSSL: about 0.1 ms, against 1-3 ms for the pure-JS
 * verification, which was the largest cost of a join into a 2,000-listener room (#17.3).
 */
function verifySha256(
  key: PublicKey,
  message: Buffer,
  signature: Buffer,
  format: 'compact' | 'der',
): boolean {
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_P256_COMPRESSED, key.compressed]),
    format: 'der',
    type: 'spki',
  });
  return verify(
    'sha256',
    message,
    { key: publicKey, dsaEncoding: format === 'compact' ? 'ieee-p1363' : 'der' },
    signature,
  );
}

/**
 * @noble/curves, required with the first signature in the original's form: loading it
 * builds the curves' tables and touches `globalThis.crypto` (Node's WebCrypto), which an
 * idle server need not hold (#17.2).
 */
const p256 = loadOnce(
  () =>
    (createRequire(import.meta.url)('@noble/curves/nist.js') as typeof import('@noble/curves/nist.js')).p256,
);

/** The original's form, the challenge's bytes as the digest: Node has no call for it. */
function verifyRaw(key: PublicKey, message: Buffer, signature: Buffer, format: 'compact' | 'der'): boolean {
  return p256().verify(signature, message, key.compressed, { prehash: false, format, lowS: false });
}

/** The same, for a SHA-256 digest the caller computed (tests and tools). */
export function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * A challenge as the original's (8 letters), but from all 52 letters without modulo
 * bias (`randomInt` is uniform).
 */
export function newChallenge(length = 8): string {
  let out = '';
  for (let i = 0; i < length; i++) out += LETTERS[randomInt(LETTERS.length)];
  return out;
}

/**
 * The server's own P-256 key, new at every start as in the original; its public half
 * (hex of the *uncompressed* point) is the first SSE event, `pubkey`.
 */
export function serverPublicKeyHex(): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  return Buffer.concat([Buffer.from([4]), x, y]).toString('hex');
}
