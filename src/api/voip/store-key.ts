/**
 * A user id or room name as one store key token: kept when it is already of the KV
 * alphabet without dots or `=` (key-mode ids are hex, side-site ids digits), otherwise
 * `b=` + its base64url, so no two ids share a key and none holds a dot.
 */
export function storeKey(id: string): string {
  return /^[A-Za-z0-9_-]{1,200}$/.test(id) ? id : `b=${Buffer.from(id, 'utf8').toString('base64url')}`;
}
