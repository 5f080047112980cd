#!/usr/bin/env node
// `chorus` / `npx chorus`: in a checkout, the sources through tsx (right after `npm install`,
// no build step, never a stale dist/); in an installed package (which ships dist/ only), the
// built server. tsx is a devDependency, so it is there exactly when the sources are.
import { existsSync } from 'node:fs';

const source = new URL('../src/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/src/main.js', import.meta.url).href);
}
