// Builds the browser SDK (sdk/) into sdk/dist/: one ESM bundle with esbuild
// (chorus-sdk.js, plus a minified copy for a <script type="module"> from a CDN-less page)
// and its type declarations with tsc, which also typechecks the SDK as its own project
// (DOM only, no Node types). `--no-types` skips tsc for a quick bundle.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const sdk = new URL('../sdk/', import.meta.url).pathname;
// `--out DIR`: the bundles go there instead of sdk/dist (tests build their own copy, so
// test files running at once never read a bundle another one is writing).
const outAt = process.argv.indexOf('--out');
const out = outAt > 0 && process.argv[outAt + 1] ? process.argv[outAt + 1] : join(sdk, 'dist');
const common = {
  entryPoints: [join(sdk, 'src/index.ts')],
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  logLevel: 'warning',
};
await Promise.all([
  build({ ...common, outfile: join(out, 'chorus-sdk.js'), sourcemap: true }),
  build({ ...common, outfile: join(out, 'chorus-sdk.min.js'), minify: true }),
]);
if (!process.argv.includes('--no-types')) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(sdk, 'tsconfig.json')], { stdio: 'inherit' });
}
console.log(
  `built the SDK into ${out}: chorus-sdk.js, chorus-sdk.min.js` +
    (process.argv.includes('--no-types') ? '' : ' (declarations: sdk/dist/index.d.ts)'),
);
