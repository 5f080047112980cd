// The layers of src/ as lint rules: a file may import its own layer and the layers before
// it in LAYERS, never one after it, and one API surface never imports another. Written
// with ESLint's core no-restricted-imports (no plugin, no resolver): the rule sees the
// import as written, so one config entry per directory of src/ spells the forbidden
// targets with that directory's exact number of `../`. Directories are read when lint
// runs, so a new folder is covered at once, and a new top-level folder that is not in
// LAYERS stops lint until someone decides where it sits. See docs/architecture.md#layers.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Lowest first. `main.js` is src/main.ts, the CLI entry on top of everything. */
export const LAYERS = ['lib', 'config', 'ports', 'core', 'media', 'engine', 'api', 'server', 'main.js'];

const ORDER = LAYERS.join(' <- ');
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// `main.js` is a file, the others are folders: `../api/x.js` or `../main.js`.
const target = (layer) => (layer.endsWith('.js') ? escape(layer) + '$' : escape(layer) + '/');

function directories(dir) {
  const subdirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [dir, ...subdirs.flatMap((e) => directories(join(dir, e.name)))];
}

/** One flat-config entry per directory under `srcDir` (given relative to the repo root). */
export function layerRules(rootDir, srcDir = 'src') {
  const entries = [];
  for (const top of readdirSync(join(rootDir, srcDir), { withFileTypes: true })) {
    if (!top.isDirectory()) continue;
    const rank = LAYERS.indexOf(top.name);
    if (rank < 0) {
      throw new Error(`eslint-layers.js: ${srcDir}/${top.name}/ is in no layer; add it to LAYERS (${ORDER})`);
    }
    const above = LAYERS.slice(rank + 1);
    for (const abs of directories(join(rootDir, srcDir, top.name))) {
      const dir = abs
        .slice(rootDir.length + 1)
        .split('\\')
        .join('/');
      const parts = dir.split('/').slice(1); // [layer, sub, ...]
      const up = escape('../'.repeat(parts.length));
      const patterns = [
        {
          regex: `^${up}(${above.map(target).join('|')})`,
          message: `${top.name}/ may not import a layer above it; the order is ${ORDER} (docs/architecture.md#layers).`,
        },
      ];
      // api/<surface>/...: the other surfaces are one `../` (and more) away.
      if (top.name === 'api' && parts.length >= 2) {
        const others = readdirSync(join(rootDir, srcDir, 'api'), { withFileTypes: true })
          .filter((e) => e.isDirectory() && e.name !== parts[1])
          .map((e) => escape(e.name) + '/');
        const toApi = escape('../'.repeat(parts.length - 1));
        if (others.length > 0) {
          patterns.push({
            regex: `^${toApi}(${others.join('|')})`,
            message: `api/${parts[1]}/ may not import another surface; shared behaviour lives in core/, media/ or lib/.`,
          });
        }
      }
      entries.push({
        files: [`${dir}/*.ts`],
        rules: { 'no-restricted-imports': ['error', { patterns }] },
      });
    }
  }
  return entries;
}
