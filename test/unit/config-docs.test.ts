import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';

it("the README's config table is generated from the current schema", () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/gen-config-docs.ts', '--check'], {
    encoding: 'utf8',
  });
  expect(out).toMatch(/is current/);
});
