// The layers of src/ as lint rules: a file may import its own layer and the layers before
// it in LAYERS, never one after it, and one API surface never imports another. Written
// with ESLint's core no-restricted-imports (no plugin, no resolver): the rule sees the
// import as written, so one config entry per directory of src/ spells the forbidden
// targets with that directory's exact number of `../`. Directories are read when lint
// runs, so a new folder is covered at once, and a new top-level folder that is not in
// LAYERS stops lint until someone decides where it sits. See docs/architecture.md#layers.
// no-restricted-imports does not see `import()` (surfaces are loaded lazily, api/surfaces.ts):
// the small rule `layers/import-expression` below checks those against the same patterns,
// and refuses an `import()` whose path is not a literal, which no rule could check.
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

/**
 * `import('...')` under the same patterns as no-restricted-imports gives static imports,
 * and only with a literal path (a computed one could reach any layer unseen).
 */
const importExpression = {
  meta: {
    type: 'problem',
    schema: [
      {
        type: 'object',
        properties: { patterns: { type: 'array' } },
        additionalProperties: false,
      },
    ],
    messages: {
      computed: 'import() must name a literal path, so lint can check the layer order (eslint-layers.js).',
      restricted: "'{{path}}' import is restricted from being used by a pattern. {{message}}",
    },
  },
  create(context) {
    const patterns = (context.options[0]?.patterns ?? []).map((p) => ({
      re: new RegExp(p.regex),
      message: p.message,
    }));
    return {
      ImportExpression(node) {
        const source = node.source;
        const path =
          source.type === 'Literal' && typeof source.value === 'string'
            ? source.value
            : source.type === 'TemplateLiteral' && source.expressions.length === 0
              ? source.quasis[0].value.cooked
              : undefined;
        if (path === undefined) {
          context.report({ node, messageId: 'computed' });
          return;
        }
        const hit = patterns.find((p) => p.re.test(path));
        if (hit) context.report({ node, messageId: 'restricted', data: { path, message: hit.message } });
      },
    };
  },
};

/** The plugin holding that rule, registered by each entry of `layerRules`. */
export const layersPlugin = {
  meta: { name: 'chorus-layers' },
  rules: { 'import-expression': importExpression },
};

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
        plugins: { layers: layersPlugin },
        rules: {
          'no-restricted-imports': ['error', { patterns }],
          'layers/import-expression': ['error', { patterns }],
        },
      });
    }
  }
  return entries;
}
