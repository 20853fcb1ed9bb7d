import { relative } from 'node:path'
import { defaultServerConditions } from 'vite'
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The files that take about a minute or more on 2 cores (measured), longest first. They start
 * first, so that none is left running alone at the end of a run. vitest's own order (its
 * last run's durations, else file size) starts the small fault-matrix files last.
 */
const LONGEST_FIRST = [
  'test/integration/login-abuse.test.ts',
  'test/stack/contract.test.ts',
  'test/integration/password-change.test.ts',
  'test/stack/multi-region.test.ts',
  'test/browser/demo-page.test.ts',
  'test/integration/sessions-api.test.ts',
  'test/integration/faults-matrix-password1.test.ts',
  'test/integration/faults-matrix-password2.test.ts',
  'test/stack/rotation.test.ts',
  'test/client/token-client.test.ts',
  'test/stack/construct-package.test.ts',
  'test/client/package.test.ts',
  // 15 to 28 s alone, 40 s beside test/stack/multi-region.test.ts: the synth and two deployments.
  'test/stack/multi-region-envelope.test.ts',
  // 17 to 28 s alone: the synth, two deployments, the fork consumers' cold starts.
  'test/stack/multi-region-adopt.test.ts',
]

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const index = LONGEST_FIRST.indexOf(relative(process.cwd(), file.moduleId))
      return index < 0 ? LONGEST_FIRST.length : index
    }
    const rest = await super.sort(files)
    return [...rest].sort((a, b) => rank(a) - rank(b))
  }
}

export default defineConfig({
  // `@rotating-token-service/cdk` resolves to its sources (construct/index.ts), as it does for
  // tsc and cdk.json: the app's stack imports the construct by its package name.
  // (vitest's own default drops 'module'; the workers get these as node --conditions too).
  ssr: {
    resolve: {
      conditions: [
        'rotating-token-service-source',
        ...defaultServerConditions.filter((condition) => condition !== 'module'),
      ],
    },
  },
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
    sequence: { sequencer: LongestFirst },
    // A passing test prints nothing; a failing one shows its console output.
    silent: 'passed-only',
    allowOnly: false,
  },
})
