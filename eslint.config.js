// Type-aware lint: the rules that catch async and exhaustiveness mistakes a media
// server cannot afford (a floating promise in a socket handler is a silent leak).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { layerRules } from './eslint-layers.js';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'web/dist/**', 'data/**', 'coverage/**', 'test-artifacts/**'] },
  // The SDK's bundle and declarations (npm run build:sdk).
  { ignores: ['sdk/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ['*.js', '*.mjs', 'scripts/*.mjs', 'test/fixtures/*.mjs', 'deploy/*.mjs'],
          // The plain-JS files (config, scripts, fixtures run by bare node) outgrew the
          // default cap of 8; each is small, so the extra default-project cost is too.
          maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 16,
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      // Fastify plugins and hooks are async by contract, with or without an await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  // Layers without cycles: no folder of src/ imports one above it (eslint-layers.js).
  ...layerRules(import.meta.dirname),
  {
    // Scripts, benchmarks and browser pages talk to a person on a console by design.
    files: ['scripts/**', 'bench/**', 'web/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Tests read JSON off the wire and assert on it; typing every parse adds nothing.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
