import { generateKeyPairSync, sign } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, it } from 'vitest';
import { parsePublicKey, verifyChallenge } from '../../src/api/voip/pkey.js';

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const y = Buffer.from(jwk.y!, 'base64url');
  const hex = Buffer.concat([Buffer.from([2 + (y[31]! & 1)]), Buffer.from(jwk.x!, 'base64url')]).toString(
    'hex',
  );
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  return { key: parsePublicKey(hex)!, privateKey, d };
}

describe('verifyChallenge', () => {
  const challenge = 'AbCdEfGh';
  const { key, privateKey, d } = keyPair();
  const other = keyPair();

  it('accepts ECDSA with SHA-256 (OpenSSL) as r||s and as DER, from this key only', () => {
    for (const dsaEncoding of ['ieee-p1363', 'der'] as const) {
      const sig = sign('sha256', Buffer.from(challenge), { key: privateKey, dsaEncoding }).toString('hex');
      expect(verifyChallenge(key, challenge, sig)).toBe(true);
      expect(verifyChallenge(other.key, challenge, sig)).toBe(false);
      expect(verifyChallenge(key, 'AbCdEfGi', sig)).toBe(false);
    }
  });

  it("accepts the original's form: the challenge's bytes as the digest, DER or r||s", () => {
    const raw = p256.sign(Buffer.from(challenge), d, { prehash: false, lowS: false });
    for (const format of ['der', 'compact'] as const) {
      const sig = Buffer.from(p256.Signature.fromBytes(raw).toBytes(format)).toString('hex');
      expect(verifyChallenge(key, challenge, sig)).toBe(true);
      expect(verifyChallenge(other.key, challenge, sig)).toBe(false);
    }
  });

  it('refuses garbage without throwing', () => {
    for (const sig of ['', 'zz', '00'.repeat(64), '30'.repeat(40), 42, undefined])
      expect(verifyChallenge(key, challenge, sig)).toBe(false);
    expect(verifyChallenge(key, '', sign('sha256', Buffer.from(''), privateKey).toString('hex'))).toBe(false);
  });
});
