import type { TestProject } from 'vitest/node'
import { startDynamoDbLocal } from '../local/dynamodb-local.js'

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string
  }
}

/** One DynamoDB Local (in memory, free port) for the whole test run. */
export default async function setup(project: TestProject) {
  const started = Date.now()
  const local = await startDynamoDbLocal({})
  if (process.env.DEBUG_DYNAMODB_LOCAL) {
    console.log(`DynamoDB Local ready on ${local.endpoint} in ${Date.now() - started} ms`)
  }
  project.provide('dynamoEndpoint', local.endpoint)

  // Killed with SIGINT/SIGTERM, vitest exits without running the teardown below: stop the
  // child first, then exit with the signal's status. (If vitest exits before that finishes,
  // the 'exit' hook that startDynamoDbLocal registered SIGKILLs the child synchronously.)
  const onSignal = (signal: NodeJS.Signals) => {
    void local.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  return async () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await local.stop()
  }
}
