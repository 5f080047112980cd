// `npm run build`: everything `node dist/src/main.js` needs, in one folder (default dist/;
// a test builds into a temp folder): the server bundled by esbuild, the bundled browser
// pages, and the files the server reads next to its own modules (beep.proto, the docs it
// serves). Production dependencies only at run time: nothing here is loaded by tsx.
//
// Why a bundle and not tsc's one file per module: a start loaded about 1,200 files (ours
// and node_modules'), and resolving, reading and compiling them was most of the 1.4 s of
// CPU to /readyz (bench/idle, BENCHMARKS.md). The bundle is split at each `import()`, so a
// surface that is turned off is still never loaded (api/surfaces.ts). tsc still checks the
// types first, so a type error fails the build as before.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const out = resolve(process.argv[2] ?? join(root, 'dist'));
// The bundle sits two folders below dist/ (dist/src/app/), where tsc put the server's own
// modules (dist/src/server/), so `new URL('../../', import.meta.url)` still finds dist/'s
// web/dist and docs from any chunk.
const app = join(out, 'src/app');

/**
 * Left to node_modules at run time: native addons and packages that load files next to
 * their own code (.node, .wasm, worker scripts) or build code at run time, which a bundle
 * would break; and optional peers that are not installed (ws tries them in a try/catch).
 */
const EXTERNAL = [
  'lmdb',
  'msgpackr',
  'msgpackr-extract',
  'node-datachannel',
  '@evan/opus',
  '@echogarden/speex-resampler-wasm',
  'pino',
  'pino-pretty',
  'thread-stream',
  'protobufjs',
  // Fastify's schema compilers: Chorus loads them only on a route with a JSON schema
  // (server/lazy-schema-compilers.ts), so their code need not sit in the bundle either.
  '@fastify/ajv-compiler',
  '@fastify/fast-json-stringify-compiler',
  'bufferutil',
  'utf-8-validate',
];

rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '--noEmit', '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
await build({
  // young-generation first: an entry of its own, so the stub below can run it before the
  // chunks main.js imports are evaluated (they come first in a split bundle).
  entryPoints: [join(root, 'src/main.ts'), join(root, 'src/lib/young-generation.ts')],
  outdir: app,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  external: EXTERNAL,
  // Less source for V8 to hold; identifiers and names kept, so stack traces and the error
  // types in log lines read as in the sources.
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  sourcemap: 'linked',
  // The CommonJS packages inside the bundle call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __chorusRequire } from 'node:module'; const require = __chorusRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
// The entry stays where package.json's bin, start:dist and the Dockerfile look for it.
writeFileSync(
  join(out, 'src/main.js'),
  "#!/usr/bin/env node\nimport './app/young-generation.js';\nimport './app/main.js';\n",
);
await import('./build-web.mjs'); // web/dist, then copied: the server serves <out>/web/dist
cpSync(join(root, 'web/dist'), join(out, 'web/dist'), { recursive: true });
// beep-bites.ts reads it next to its own module, which is now a chunk of the bundle.
cpSync(join(root, 'src/api/beep/beep.proto'), join(app, 'beep.proto'));
// The front door serves README.md and docs/*.md from the folder above src/.
mkdirSync(join(out, 'docs'), { recursive: true });
for (const f of readdirSync(join(root, 'docs'))) {
  if (f.endsWith('.md')) cpSync(join(root, 'docs', f), join(out, 'docs', f));
}
cpSync(join(root, 'README.md'), join(out, 'README.md'));
console.log(`built the server into ${out}`);
