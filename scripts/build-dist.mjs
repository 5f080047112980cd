// `npm run build`: everything `node dist/src/main.js` needs, in one folder (default dist/;
// a test builds into a temp folder): the server compiled by tsc, the bundled browser
// pages, and the files the server reads next to its own modules (beep.proto, the docs it
// serves). Production dependencies only at run time: nothing here is loaded by tsx.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = resolve(process.argv[2] ?? join(root, 'dist'));

rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out], {
  stdio: 'inherit',
});
await import('./build-web.mjs'); // web/dist, then copied: the server serves <out>/web/dist
cpSync(join(root, 'web/dist'), join(out, 'web/dist'), { recursive: true });
cpSync(join(root, 'src/api/beep/beep.proto'), join(out, 'src/api/beep/beep.proto'));
// The front door serves README.md and docs/*.md from the folder above src/.
mkdirSync(join(out, 'docs'), { recursive: true });
for (const f of readdirSync(join(root, 'docs'))) {
  if (f.endsWith('.md')) cpSync(join(root, 'docs', f), join(out, 'docs', f));
}
cpSync(join(root, 'README.md'), join(out, 'README.md'));
console.log(`built the server into ${out}`);
