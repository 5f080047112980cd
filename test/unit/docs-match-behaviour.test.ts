import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';

const readme = readFileSync('README.md', 'utf8');
const rowOf = (variable: string): string =>
  readme.split('\n').find((l) => l.startsWith(`| \`${variable}\``)) ?? '';

/** The shortest value the config accepts for `variable`, by trying. */
function shortestAccepted(variable: string): number {
  for (let n = 1; n <= 64; n++) {
    try {
      loadConfig({ env: { [variable]: 'x'.repeat(n) } });
      return n;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
    }
  }
  return Infinity;
}

describe('the docs say what the server does', () => {
  it.each(['ADMIN_TOKEN', 'METRICS_TOKEN'])(
    '%s: the README gives the least length the config accepts',
    (variable) => {
      const least = shortestAccepted(variable);
      expect(least).toBeLessThan(Infinity);
      expect(rowOf(variable)).toContain(`at least ${least} characters`);
    },
  );

  it("VOIP's curl examples say how to make their $ME and $SIG, with a command that exists", () => {
    const voip = readFileSync('docs/voip.md', 'utf8');
    const firstUse = voip.indexOf('Signature=$SIG');
    expect(firstUse).toBeGreaterThan(0);
    const example = voip.slice(Math.max(0, firstUse - 1000), firstUse);
    expect(example).toContain('chorus voip sign');
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.chorus).toBe('tsx src/main.ts');
    expect(readFileSync('src/main.ts', 'utf8')).toContain("positionals[1] === 'sign'");
  });

  it('the README warns, before its config table, that WebRTC joins can meet 503 while the server is busy, with the real default', () => {
    const firstScreen = readme.slice(0, readme.indexOf('## Configuration'));
    const busy = loadConfig({}).webrtc.overloadBusyPercent;
    expect(firstScreen).toContain('`server overloaded`');
    expect(firstScreen).toContain(`\`WEBRTC_OVERLOAD_BUSY_PERCENT\` (${busy} %)`);
  });
});
