// ESLint with typescript-eslint's type-aware rules. An unawaited promise is how a queue loses work, so
// no-floating-promises and no-misused-promises are errors everywhere, tests included.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.fleet/**', 'bench/results/**', 'apps/*/public/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs', 'scripts/*.mjs', 'scripts/lib/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Nest's decorators and DI take classes as values; the empty-class modules are idiomatic there.
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  // Boundaries: an app never imports another app, a lib never imports an app, and shipped code never
  // imports the testing lib. (Cross-app system tests live in test/.) The circular-import check is dpdm's,
  // run by `npm test` beside this lint.
  {
    files: ['apps/*/src/**/*.ts', 'apps/*/test/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(\\.\\./)+(apps/)?[a-z-]+/(src|test)/', message: 'an app must not import another app: move what both need into a lib' },
          ],
        },
      ],
    },
  },
  {
    files: ['apps/*/src/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@fleet/testing', message: 'shipped code must not import the testing lib' }],
          patterns: [
            { regex: '^(\\.\\./)+(apps/)?[a-z-]+/(src|test)/', message: 'an app must not import another app: move what both need into a lib' },
          ],
        },
      ],
    },
  },
  {
    files: ['libs/*/src/**/*.ts'],
    ignores: ['libs/testing/**', '**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@fleet/testing', message: 'a lib must not import the testing lib' }],
          patterns: [{ regex: '^(\\.\\./)+apps/', message: 'a lib must not import an app' }],
        },
      ],
    },
  },
  {
    // Plain JavaScript scripts (run before `npm ci`): syntax and promise rules, no type-only rules.
    files: ['**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
  {
    // The examples are what a worker runs (node:test files, a benchmark script), and the probe a test preloads
    // into the apps: syntax rules only.
    files: ['examples/**/*.mjs', 'libs/testing/src/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false },
      globals: { process: 'readonly', console: 'readonly', performance: 'readonly' },
    },
  },
  {
    // Tests assert on JSON bodies from supertest, which are `any` by nature.
    files: ['**/*.spec.ts', '**/*.e2e-spec.ts', '**/*.integration-spec.ts', '**/test/**/*.ts', 'libs/testing/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
