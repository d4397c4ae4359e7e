// ESLint with type information (typescript-eslint's recommendedTypeChecked) over the sources,
// tests, scripts and experiments: `npm run lint` (part of `npm test`), zero warnings allowed.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'runs/**', 'experiments/results/**', 'src/engine/kernels/wasm/kernels.wasm.ts', '**/*.as.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // (the default project serves eslint.config.js and the scripts: more than its default limit of 8 files)
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs'], maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 32 },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // `_name` marks an intentionally unused binding
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // the live explorer's page script: plain browser JavaScript, outside the TypeScript project
    // (which has no DOM library), bundled by scripts/build-explorer.mjs
    files: ['src/explore/browser/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: globals.browser,
      sourceType: 'script',
      parserOptions: { project: false, program: null, projectService: false },
    },
  },
  {
    // tests, scripts and experiments read JSON output and poke at it: typing every JSON.parse there
    // would be noise, so the no-unsafe-* family applies to the library only
    files: ['**/*.test.ts', 'test/**', 'scripts/**', 'experiments/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
