/**
 * How the store port's names map onto JetStream KV, whose rules are narrower.
 *
 * Buckets: store bucket `name` is KV bucket `chorus_<name>`, where every character
 * outside `[-A-Za-z0-9]` (KV allows `[-_A-Za-z0-9]`) is written `_` plus its two hex
 * digits, `_` itself included, so two names never share a bucket: `rooms-bluesky` is
 * `chorus_rooms-bluesky`, `a_b` is `chorus_a_5fb`.
 *
 * Keys: the store alphabet is `[-/_=.A-Za-z0-9]`, KV's the same, but a KV key may not
 * start or end with `.` nor contain `..` (a key is a subject: no empty token). Such dots
 * are written `=2E`, and `=` itself `=3D`, so every `=` in a stored key starts an escape
 * and the mapping reverses exactly. Other keys are stored as they are: `alice` is `alice`,
 * `a.b` is `a.b`, `.a..b=` is `=2Ea=2E=2Eb=3D`.
 */
export function kvBucketName(name: string): string {
  return 'chorus_' + name.replace(/[^-A-Za-z0-9]/g, (c) => '_' + hex(c));
}

export function encodeKvKey(key: string): string {
  let out = '';
  for (let i = 0; i < key.length; i++) {
    const c = key[i]!;
    if (c === '=') out += '=3D';
    else if (c === '.' && (i === 0 || i === key.length - 1 || key[i - 1] === '.' || key[i + 1] === '.'))
      out += '=2E';
    else out += c;
  }
  return out;
}

export function decodeKvKey(stored: string): string {
  return stored.replace(/=(2E|3D)/g, (_m, code: string) => (code === '2E' ? '.' : '='));
}

function hex(c: string): string {
  return c.charCodeAt(0).toString(16).padStart(2, '0');
}
