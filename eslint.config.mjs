// Lint only for rules that catch real bugs, not style: a promise nobody awaits or handles is a
// daemon outage waiting to happen (an unhandled rejection), and a promise passed where a plain
// callback is expected (an async listener) rejects unobserved. Type-aware, so it reads the tests'
// tsconfig, which covers src/, bench/ and test/.
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**', 'data/**'] },
  {
    files: ['**/*.ts'],
    ignores: ['ui/**'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // tap runs top-level t.test() calls itself and reports their failures: not floating.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false, allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: 'test' }] }],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  // The dashboard runs in the browser: its own tsconfig (the DOM's types), the same two rules.
  {
    files: ['ui/**/*.ts', 'ui/**/*.tsx'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './ui/tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
)
