// Bundles the browser pages under web/ into web/dist/ with esbuild.
import { build } from 'esbuild';
import { cpSync, mkdirSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const web = new URL('../web/', import.meta.url).pathname;
const dist = join(web, 'dist');
const pages = readdirSync(web, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(web, d.name, 'main.ts')))
  .map((d) => d.name);

mkdirSync(dist, { recursive: true });
await build({
  entryPoints: pages.map((p) => ({ in: join(web, p, 'main.ts'), out: join(p, 'main') })),
  outdir: dist,
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: true,
  minify: process.env.NODE_ENV === 'production',
  logLevel: 'warning',
});
for (const p of pages) {
  for (const f of readdirSync(join(web, p))) {
    if (/\.(html|css|svg|png)$/.test(f)) cpSync(join(web, p, f), join(dist, p, f));
  }
}
cpSync(join(web, 'shared'), join(dist, 'shared'), { recursive: true });
console.log(`built ${pages.length} page(s) into web/dist: ${pages.join(', ')}`);
