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
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, resolve } from 'node:path';
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
  'pino-pretty',
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
 * prom-client's gzip push), worker_threads (pino, bundled: its transports' threads).
 * Loading them initialises more of OpenSSL and V8 compiles their code (BENCHMARKS.md,
 * #17.2). Each import of them in the bundle gets a stand-in whose exports are getters that
 * require the real module on first use, so a server with TLS or compression turned on loads
 * it then, as before.
 */
const LAZY_BUILTINS = new Set(['tls', 'https', 'http2', 'zlib', 'worker_threads']);
/**
 * Every other Node module the bundle imports with `import` is required instead, through this
 * stand-in: Node 24 builds an ES module facade for `import ... from 'node:http'` by reading
 * every export of the module, and node:http's lazy exports (WebSocket, CloseEvent, ...) then
 * load undici, tls, http2 and zlib at start. The stand-in is an ES module: its default export
 * the module, each named export one property, read when the stand-in is evaluated and left
 * out of the bundle where nothing imports it. Not `module.exports = require(...)`: esbuild's
 * interop then copies every property descriptor of the module onto a namespace object, and
 * reading the descriptor of one of Node 24's lazy properties loads it (util's diff and
 * setTraceSigInt, and worker_threads with them: about 1 MiB of an idle server, #17.2).
 */
function esmStandIn(name, names) {
  const exported = names.filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
  return (
    `const real = require('node:${name}');\nconst get = (k) => real[k];\nexport default real;\n` +
    exported.map((k, i) => `const _${i} = /* @__PURE__ */ get('${k}');\nexport { _${i} as ${k} };\n`).join('')
  );
}

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
      const real = await import(`node:${args.path}`);
      if (args.pluginData !== 'lazy')
        return { loader: 'js', contents: esmStandIn(args.path, Object.keys(real)) };
      const names = Object.keys(real).filter((k) => k !== 'default');
      // Plain functions (lower case: not classes) stand in as wrappers, so that taking one at
      // a module's top (`const { gzipSync } = require('zlib')`) does not load the module yet.
      const calls = names.filter((k) => typeof real[k] === 'function' && /^[a-z]/.test(k));
      // pino reads worker_threads' isMainThread at its top: a worker thread has loaded the
      // module before running any code of ours, so if it is not loaded this is the main thread.
      const known =
        args.path === 'worker_threads'
          ? `const known = { isMainThread: () => (process.moduleLoadList.includes('NativeModule worker_threads') ? load().isMainThread : true) };\n`
          : 'const known = {};\n';
      return {
        loader: 'js',
        contents:
          `let real; const load = () => (real ??= require('node:${args.path}'));\n` +
          known +
          `const calls = new Map(${JSON.stringify(calls)}.map((k) => [k, function (...a) { return load()[k].apply(this, a); }]));\n` +
          `for (const k of ${JSON.stringify(names)}) Object.defineProperty(module.exports, k, { enumerable: true, get: () => known[k]?.() ?? calls.get(k) ?? load()[k] });\n`,
      };
    });
  },
};

/**
 * Packages the bundle's code imports at its top but an idle server does not use, left in
 * node_modules and required on first use through a stand-in (a Proxy), resolved from the
 * package that depends on them: thread-stream (pino's transports: a worker thread, only with
 * a transport such as LOG_PRETTY's pino-pretty; JSON lines to stdout need none) and
 * @opentelemetry/api (prom-client's CPU counter, for exemplars only), light-my-request
 * (Fastify's inject(), which Chorus does not call) and duplexify with readable-stream
 * (@fastify/websocket's injectWS, for tests).
 */
const LAZY_PACKAGES = {
  'thread-stream': 'pino',
  '@opentelemetry/api': 'prom-client',
  'light-my-request': 'fastify',
  duplexify: '@fastify/websocket',
};
/**
 * zod's locales: `import { z } from 'zod'` keeps every export of the namespace, so all of its
 * 50 locales (about 300 KB of the bundle's code loaded at start, #17.2) came with it, while
 * only English, which zod sets itself, is used (Chorus never calls z.config or z.locales).
 * pino, now bundled, finds its worker files next to its own transport.js in node_modules.
 */
const packageTrims = {
  name: 'package-trims',
  setup(b) {
    const names = Object.keys(LAZY_PACKAGES).map((n) => n.replace(/[/]/g, '\\/'));
    b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) =>
      args.namespace === 'lazy-package' ? undefined : { path: args.path, namespace: 'lazy-package' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-package' }, (args) => ({
      loader: 'js',
      contents:
        `let real; const load = () => (real ??= require('node:module').createRequire(require.resolve('${LAZY_PACKAGES[args.path]}'))('${args.path}'));\n` +
        'module.exports = new Proxy(function () {}, {\n' +
        '  get: (_, k) => load()[k], has: (_, k) => k in load(), getPrototypeOf: () => Object.getPrototypeOf(load()),\n' +
        '  apply: (_, self, a) => Reflect.apply(load(), self, a), construct: (_, a) => Reflect.construct(load(), a),\n' +
        '});\n',
    }));
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      /node_modules\/zod\//.test(args.importer)
        ? { path: resolve(args.resolveDir, args.path), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      loader: 'js',
      resolveDir: dirname(args.path),
      contents: "export { default as en } from './en.js';\n",
    }));
    b.onLoad({ filter: /node_modules\/pino\/lib\/transport\.js$/ }, (args) => ({
      loader: 'js',
      contents:
        "var __pinoLib = require('node:path').dirname(require.resolve('pino/lib/transport.js'));\n" +
        readFileSync(args.path, 'utf8').replaceAll('__dirname', '__pinoLib'),
    }));
  },
};

rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '--noEmit', '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
await build({
  // young-generation and optimizing-compilers first: entries of their own, so the stub below
  // can run them before the chunks main.js imports are evaluated (they come first in a split
  // bundle).
  entryPoints: [
    join(root, 'src/main.ts'),
    join(root, 'src/lib/young-generation.ts'),
    join(root, 'src/lib/optimizing-compilers.ts'),
  ],
  outdir: app,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  external: EXTERNAL,
  plugins: [builtinImports, packageTrims],
  // Less source for V8 to hold: V8 keeps every module's source text, and each identifier is a
  // string of its own (short identifiers: about 1.2 MiB of an idle server on Node 24, #17.2).
  // keepNames keeps each function's and class's `name`, so the error types in log lines and
  // the functions and methods in stack traces read as in the sources; a method's receiver
  // shows the short class name, and the linked source maps give every position and name back
  // (`node --enable-source-maps`, or any source-map tool on a logged stack).
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: true,
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
  "#!/usr/bin/env node\nimport './app/young-generation.js';\nimport './app/optimizing-compilers.js';\nimport './app/main.js';\n",
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
