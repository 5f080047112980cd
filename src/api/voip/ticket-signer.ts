import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { p256 } from '@noble/curves/nist.js';

/** What the VOIP routes' standalone auth asks for: the key's id and a signed ticket. */
export interface SignedTicket {
  /** The public key, compressed, in hex: `PKey` on the wire (`$ME` in docs/voip.md). */
  me: string;
  /** The server's current ticket for that key. */
  ticket: string;
  /** ECDSA P-256 with SHA-256 over the ticket, DER, hex: `Signature` (`$SIG`). */
  sig: string;
}

/**
 * The private key kept in `keyFile` (hex, mode 0600), made there on first use: the same
 * `$ME` every time, as a browser keeps its key.
 */
export function loadOrCreateKey(keyFile: string): Uint8Array {
  if (existsSync(keyFile)) {
    const hex = readFileSync(keyFile, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/i.test(hex))
      throw new Error(`${keyFile}: expected a P-256 private key as 64 hex digits`);
    return Uint8Array.from(Buffer.from(hex, 'hex'));
  }
  const key = p256.utils.randomSecretKey();
  writeFileSync(keyFile, `${Buffer.from(key).toString('hex')}\n`, { mode: 0o600 });
  return key;
}

/**
 * Asks `server` for a fresh ticket (`GET /getCallTicket`, header `PKey`) and signs it.
 * The signature stays good until the key's next ticket (another `/getCallTicket` or a
 * `/newCall`) or `VOIP_TICKET_TTL_SECONDS`.
 */
export async function signedTicket(server: string, key: Uint8Array): Promise<SignedTicket> {
  const me = Buffer.from(p256.getPublicKey(key, true)).toString('hex');
  const res = await fetch(`${server.replace(/\/+$/, '')}/getCallTicket`, { headers: { PKey: me } });
  const ticket = await res.text();
  if (!res.ok) throw new Error(`GET /getCallTicket answered ${res.status}: ${ticket.slice(0, 200)}`);
  const sig = Buffer.from(p256.sign(Buffer.from(ticket, 'utf8'), key, { format: 'der' })).toString('hex');
  return { me, ticket, sig };
}
