import { readFileSync } from 'node:fs'
import type { TestProject } from 'vitest/node'
import { buildBundles } from '../lib/build-bundles.js'
import { assertJava, startDynamoDbLocal } from '../local/dynamodb-local.js'

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string
    /**
     * A second DynamoDB Local, the other region's in the two-region simulations of the
     * synthesized stacks (test/stack/regions.ts): started once per run, as the first.
     */
    dynamoEndpointSecondRegion: string
    /** Every function's bundle, built once per run: `PREBUILT_BUNDLES_CONTEXT` (lib/bundling.ts). */
    bundlesDir: string
    /** esbuild's metafile of each bundle, `<name>.json`. */
    bundleMetafiles: string
  }
}

/** Where the bundles are kept between runs, by a hash of their inputs (lib/build-bundles.ts). */
const BUNDLE_CACHE = 'node_modules/.cache/token-service-bundles'

/** A missing prerequisite: one line for the person who ran `npm test`, no stack. */
function refuse(message: string): never {
  process.stderr.write(`npm test: ${message}\n`)
  process.exit(1)
}

/**
 * Once per test run: the prerequisites checked, every function bundled, and two DynamoDB
 * Locals (in memory, free ports): the run's, and a second region's for the two-region
 * simulations of the synthesized stacks.
 */
export default async function setup(project: TestProject) {
  const pinned = (
    JSON.parse(readFileSync('package.json', 'utf8')) as { devDependencies: Record<string, string> }
  ).devDependencies.node
  if (process.version !== `v${pinned}`) {
    refuse(
      `the tests run on Node ${pinned} (the node devDependency, Lambda's runtime), not ${process.version}: run them with \`npm test\` or \`npx vitest\``,
    )
  }
  try {
    assertJava()
  } catch (error) {
    refuse((error as Error).message)
  }
  const started = Date.now()
  // The JVMs start while esbuild bundles.
  const [dynamodb, secondRegion, built] = await Promise.allSettled([
    startDynamoDbLocal({}),
    startDynamoDbLocal({}),
    buildBundles(BUNDLE_CACHE),
  ])
  if (
    dynamodb.status === 'rejected' ||
    secondRegion.status === 'rejected' ||
    built.status === 'rejected'
  ) {
    for (const started of [dynamodb, secondRegion]) {
      if (started.status === 'fulfilled') await started.value.stop()
    }
    const failed = [dynamodb, secondRegion, built].find((r) => r.status === 'rejected')
    throw (failed as PromiseRejectedResult).reason
  }
  const local = dynamodb.value
  const second = secondRegion.value
  const bundles = built.value
  if (process.env.DEBUG_DYNAMODB_LOCAL) {
    console.log(`DynamoDB Local ready on ${local.endpoint} in ${Date.now() - started} ms`)
  }
  project.provide('dynamoEndpoint', local.endpoint)
  project.provide('dynamoEndpointSecondRegion', second.endpoint)
  project.provide('bundlesDir', bundles.folder)
  project.provide('bundleMetafiles', bundles.metafiles)

  // Killed with SIGINT/SIGTERM, vitest exits without running the teardown below: stop the
  // child first, then exit with the signal's status. (If vitest exits before that finishes,
  // the 'exit' hook that startDynamoDbLocal registered SIGKILLs the child synchronously.)
  const onSignal = (signal: NodeJS.Signals) => {
    void Promise.allSettled([local.stop(), second.stop()]).finally(() =>
      process.exit(signal === 'SIGINT' ? 130 : 143),
    )
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  return async () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await Promise.all([local.stop(), second.stop()])
  }
}
