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
import { createRequire, isBuiltin } from 'node:module';
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

/**
 * Node's own modules that an idle server does not use but that the bundle's code imports at
 * its top: tls and https (ws's client, prom-client's push gateway, Chorus's TLS listener and
 * settings check), http2 (Fastify, for its http2 option), zlib (ws's permessage-deflate,
 * prom-client's gzip push). Loading them initialises more of OpenSSL and V8 compiles their
 * code (BENCHMARKS.md, #17.2). Each import of them in the bundle gets a stand-in whose
 * exports are getters that require the real module on first use, so a server with TLS or
 * compression turned on loads it then, as before.
 */
const LAZY_BUILTINS = new Set(['tls', 'https', 'http2', 'zlib']);
/**
 * Every other Node module the bundle imports with `import` is required instead: Node 24
 * builds an ES module facade for `import ... from 'node:http'` by reading every export of
 * the module, and node:http's lazy exports (WebSocket, CloseEvent, ...) then load undici,
 * tls, http2 and zlib at start. A require() reads nothing until the code asks for it.
 */
const builtinImports = {
  name: 'builtin-imports',
  setup(b) {
    b.onResolve({ filter: /^[a-z_/0-9:]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (!isBuiltin(name) || args.namespace === 'builtin') return undefined;
      if (LAZY_BUILTINS.has(name)) return { path: name, namespace: 'builtin', pluginData: 'lazy' };
      return args.kind === 'import-statement' ? { path: name, namespace: 'builtin' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, async (args) => {
      if (args.pluginData !== 'lazy')
        return { loader: 'js', contents: `module.exports = require('node:${args.path}');\n` };
      const real = await import(`node:${args.path}`);
      const names = Object.keys(real).filter((k) => k !== 'default');
      // Plain functions (lower case: not classes) stand in as wrappers, so that taking one at
      // a module's top (`const { gzipSync } = require('zlib')`) does not load the module yet.
      const calls = names.filter((k) => typeof real[k] === 'function' && /^[a-z]/.test(k));
      return {
        loader: 'js',
        contents:
          `let real; const load = () => (real ??= require('node:${args.path}'));\n` +
          `const calls = new Map(${JSON.stringify(calls)}.map((k) => [k, function (...a) { return load()[k].apply(this, a); }]));\n` +
          `for (const k of ${JSON.stringify(names)}) Object.defineProperty(module.exports, k, { enumerable: true, get: () => calls.get(k) ?? load()[k] });\n`,
      };
    });
  },
};

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
  plugins: [builtinImports],
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
