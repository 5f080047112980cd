import { randomBytes } from 'node:crypto';
import type { Store } from '../ports/store/store.js';

/**
 * A secret generated once and kept in the store, so signed cookies stay valid across
 * restarts (and, with a shared store, across nodes) without the operator setting one.
 */
export async function persistentSecret(store: Store, name: string): Promise<string> {
  const bucket = store.bucket<string>('secrets');
  const fresh = randomBytes(32).toString('base64url');
  await bucket.create(name, fresh);
  const kept = await bucket.get(name);
  if (!kept) throw new Error(`secret ${name} could not be stored`);
  return kept;
}
