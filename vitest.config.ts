import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Once per run, before any file: the prerequisites checked, every function bundled,
    // DynamoDB Local started (and stopped for sure).
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most files wait on DynamoDB Local, child processes or a browser more than they compute:
    // three at a time keep 2 cores busy (vitest's default on 2 cores is one at a time).
    maxWorkers: 3,
    // A passing test prints nothing; a failing one shows its console output.
    silent: 'passed-only',
    allowOnly: false,
  },
})
