import { fileURLToPath } from 'node:url';
import { ESLint, Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

// Surfaces are loaded with import() (api/surfaces.ts), which no-restricted-imports does not
// see: the project's config gives each file of src/ `layers/import-expression` with the same
// patterns. Run here as eslint.config.js configures it for the probe's folder.
const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });
const linter = new Linter({ configType: 'flat' });

async function problems(file: string, code: string): Promise<string[]> {
  const config = (await eslint.calculateConfigForFile(file)) as Linter.Config;
  const rule = config.rules?.['layers/import-expression'];
  const layers = config.plugins?.layers;
  expect(rule, `no import() layer rule for ${file}`).toBeDefined();
  expect(layers).toBeDefined();
  const messages = linter.verify(
    code,
    [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { layers: layers! },
        rules: { 'layers/import-expression': rule! },
      },
    ],
    file,
  );
  for (const m of messages) expect(m.ruleId, m.message).toBe('layers/import-expression');
  return messages.map((m) => m.message);
}

describe('layer rule for import()', () => {
  it('refuses a lazy import of a layer above or of another surface', async () => {
    const [up] = await problems('src/core/probe.ts', "const m = await import('../api/surfaces.js');");
    expect(up).toMatch(/core\/ may not import a layer above it/);
    const [other] = await problems('src/api/voip/probe.ts', "void import('../beep/beep-plugin.js');");
    expect(other).toMatch(/may not import another surface/);
    expect(
      await problems('src/media/webrtc/probe.ts', 'void import(`../../engine/engine.js`);'),
    ).toHaveLength(1);
  });

  it('refuses a computed path, which lint could not check', async () => {
    const [message] = await problems(
      'src/api/probe.ts',
      "const n = 'voip'; void import(`./${n}/voip-plugin.js`);",
    );
    expect(message).toMatch(/literal path/);
  });

  it('lets a surface be loaded lazily from api/ and a lower layer from anywhere', async () => {
    expect(await problems('src/api/probe.ts', "void import('./voip/voip-plugin.js');")).toEqual([]);
    expect(await problems('src/api/probe.ts', "void import('../media/audio/resampler.js');")).toEqual([]);
    expect(await problems('src/server/probe.ts', "void import('../api/surfaces.js');")).toEqual([]);
  });
});
