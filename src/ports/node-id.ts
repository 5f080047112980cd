import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const VALID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * This node's id: `CLUSTER_NODE_ID` when set, otherwise one generated on the first start
 * and kept in `<DATA_DIR>/node-id`, so a restarted node is the same node to the others
 * (records naming it as owner stay its own). A file that does not hold a valid id is
 * replaced by a fresh one.
 */
export function nodeIdFor(configured: string | undefined, dataDir: string): string {
  if (configured) return configured;
  const file = join(dataDir, 'node-id');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (VALID.test(kept)) return kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fresh = `node-${randomBytes(6).toString('hex')}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, fresh + '\n');
  return fresh;
}
