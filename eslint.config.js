// typescript-eslint, type-aware (`npm run lint`, run by .ci/run). The source gets the
// recommended type-checked rules plus the habits of STYLE.md: every promise has an owner
// (no-floating-promises, no-misused-promises) and type-only imports say so. Tests get
// the same promise rules with a lighter rest: they cast and poke at answers on purpose.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const promiseRules = {
  '@typescript-eslint/no-floating-promises': 'error',
  '@typescript-eslint/no-misused-promises': 'error',
};

const unusedVars = { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true };

const styleRules = {
  '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
  '@typescript-eslint/no-unused-vars': ['error', unusedVars],
  'no-empty': ['error', { allowEmptyCatch: true }],
};

// Rules of recommendedTypeChecked that do not fit this code, and why.
const notForThisCode = {
  // no class and no `this`: factories return objects of closures (STYLE.md habit 10),
  // typed by interfaces written with method syntax, so passing `store.get` is safe
  '@typescript-eslint/unbound-method': 'off',
  // async by contract: fastify handlers answer with their return value, and plugin
  // handlers and SDK functions return promises whether or not they await
  '@typescript-eslint/require-await': 'off',
  // `list[i]!` says "present here" on purpose; without noUncheckedIndexedAccess the
  // rule calls each one unnecessary and --fix would strip them
  '@typescript-eslint/no-unnecessary-type-assertion': 'off',
  // promises rejected with an AbortSignal's reason (typed any) or a caught error, as
  // they are: wrapping them would hide the AbortError/TimeoutError the callers test for
  '@typescript-eslint/prefer-promise-reject-errors': 'off',
};


export default tseslint.config(
  { ignores: ['dist/**', '**/node_modules/**', 'test-artifacts/**', '.tap/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    files: ['runtime/**/*.ts', 'connectors/**/*.ts', 'plugins/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    rules: { ...promiseRules, ...styleRules, ...notForThisCode },
  },
  {
    files: ['test/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    rules: {
      ...promiseRules,
      // tap owns the promise of a subtest: a failure in it fails the parent
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      ...styleRules,
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    rules: { 'no-unused-vars': ['error', unusedVars], 'no-empty': ['error', { allowEmptyCatch: true }] },
  },
  {
    files: ['runtime/console/static/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
);
