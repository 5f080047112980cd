import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The `version` of the nearest package.json named "chorus" above this module (src/ when
 * run with tsx, dist/src/ when built); "unknown" when there is none.
 */
export function chorusVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'chorus' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json here: look one level up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
