// The server turns V8's allocation-site pretenuring off as it starts (src/lib/young-generation.ts,
// #17 session 14): a burst of connections made sites that later allocate per message look
// long-lived, and the old generation then grew with every message. Checked in a child process
// with V8's own trace of its pretenuring decisions: objects of one literal site, all kept, are
// what V8 tenures; after the module is imported, no site is tenured, unless the operator asked.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../src/lib/young-generation.ts', import.meta.url));

/**
 * A million objects of one literal site, every one kept: V8 tenures the site when it may. With
 * the module, as the server does: imported first, the young generation released once built
 * (its growth held back changes when V8 scavenges, so it is released here as in the server).
 */
const survivors = (withModule: boolean): string => `
${withModule ? `const { releaseYoungGeneration } = await import(${JSON.stringify(MODULE)});\nreleaseYoungGeneration();\nawait new Promise((r) => setImmediate(r));` : ''}
const keep = [];
function make(i) { return { a: i, b: [i] }; }
for (let i = 0; i < 1_000_000; i++) keep.push(make(i));
console.log('kept', keep.length);
`;

/**
 * V8's heuristics made deterministic for the count, in every child alike. Whether and when V8
 * optimized the allocating loop changed what it counted (with the loop optimized early, no
 * site was tenured): on CI's busy cores the default case saw no site tenured (1 run in 1), and
 * 5 of 6 runs of the file under two busy loops failed. The optimizing compilers are off in
 * the child. A scavenge that finds a young page nearly all alive also moves the whole page to
 * the old generation without counting its objects: page promotion is off too.
 */
const DETERMINISTIC = ['--no-maglev', '--no-turbofan', '--no-page-promotion'];

/** How many sites V8 switched to allocating in the old generation. */
function tenuredSites(withModule: boolean, flags: string[] = []): number {
  const run = spawnSync(
    process.execPath,
    [
      ...DETERMINISTIC,
      ...flags,
      '--trace-pretenuring-statistics',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      survivors(withModule),
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect(run.status, run.stderr).toBe(0);
  expect(run.stdout).toContain('kept 1000000');
  return run.stdout.split('\n').filter((line) => /=> tenure$/.test(line.trim())).length;
}

describe('allocation-site pretenuring', () => {
  it('is what V8 does to such a site by default', () => {
    expect(tenuredSites(false)).toBeGreaterThan(0);
  }, 90_000);

  it('is off in a process that imported the module: no site tenured', () => {
    expect(tenuredSites(true)).toBe(0);
  }, 90_000);

  it("stays on when the operator asked for it (node's command line): the same script, sites tenured", () => {
    expect(tenuredSites(true, ['--allocation-site-pretenuring'])).toBeGreaterThan(0);
  }, 90_000);
});
