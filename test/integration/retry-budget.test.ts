/**
 * The retry budget (functions/core/retries.ts, docs/design.md "Faults"): each layer
 * spends its attempts in full and no more, against DynamoDB Local through a DynamoDB
 * client built as a deployed function builds it (AWS_MAX_ATTEMPTS), with the faults of
 * test/support/faults.ts.
 */
import { readFileSync } from 'node:fs'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { FinalizeRequestMiddleware } from '@aws-sdk/types'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { RETRIES, retryBudget } from '../../functions/core/retries.js'
import { DEFAULTS } from '../../lib/defaults.js'
import { type DynamoCommand, DynamoFaults, type FaultPlan } from '../support/faults.js'
import { addCheapUser, type Harness, startHarness } from '../support/harness.js'

const SDK_ATTEMPTS = DEFAULTS.awsMaxAttempts
const budget = retryBudget(SDK_ATTEMPTS)

let h: Harness
let user: User
const faults = new DynamoFaults()
const attempts = new Map<DynamoCommand, number>()

/** Counts every attempt the SDK sends, inside its retry loop, faulted or not. */
function countAttempts(client: DynamoDBClient): void {
  // biome-ignore lint/suspicious/noExplicitAny: the SDK's own middleware typing
  const count: FinalizeRequestMiddleware<any, any> = (next, context) => async (args) => {
    const command = String(context.commandName).replace(/Command$/, '') as DynamoCommand
    attempts.set(command, (attempts.get(command) ?? 0) + 1)
    return next(args)
  }
  client.middlewareStack.addRelativeTo(count, {
    relation: 'after',
    toMiddleware: 'retryMiddleware',
    name: 'countAttempts',
  })
}

/** Each of the first `calls` calls of `command` fails its first attempt, thrown back by the SDK's. */
const throttledOnce = (command: DynamoCommand, calls: number): FaultPlan[] =>
  Array.from({ length: calls }, (_, index) => ({
    command,
    fault: 'Throttling' as const,
    attempts: 'first' as const,
    call: index + 1,
  }))

beforeAll(async () => {
  h = await startHarness({
    dynamodb: 'lambda',
    env: {
      AWS_MAX_ATTEMPTS: String(SDK_ATTEMPTS),
      // Generous: only the faults injected here may fail a call, not a busy machine.
      AWS_CALL_TIMEOUT_MS: '5000',
    },
  })
  faults.install(h.dynamodb)
  // Added after the faults, so that it runs before them: each attempt is counted, even one
  // a fault then fails.
  countAttempts(h.dynamodb)
  user = await addCheapUser(h, 'budget')
})
afterAll(async () => {
  await faults.close()
  await h.close()
})
beforeEach(() => {
  faults.clear()
  attempts.clear()
})

describe('the retry budget, from the SDK’s attempts to ours', () => {
  it(`is ${budget.request} attempts a request, ${budget.storeCall} a store method and ${budget.rotation} a rotation’s collisions, as docs/design.md says`, () => {
    expect(budget).toEqual({ request: 2, storeCall: 6, rotation: 16 })
    expect(RETRIES).toEqual({ storeAttempts: 3, rotationAttempts: 4 })
    const faultsSection = readFileSync('docs/design.md', 'utf8').split('### Faults')[1] ?? ''
    for (const stated of [
      `${budget.request} attempts`,
      `${RETRIES.storeAttempts} requests`,
      `${budget.storeCall} attempts`,
      `${RETRIES.rotationAttempts} rounds`,
      `${budget.rotation} attempts`,
    ]) {
      expect(faultsSection).toContain(stated)
    }
  })

  it('the SDK tries a throttled request AWS_MAX_ATTEMPTS times; then it is a 503 that no layer above retries', async () => {
    const refreshToken = (await h.login(user)).body.refresh_token
    attempts.clear()
    faults.arm({ command: 'BatchGetItem', fault: 'Throttling', attempts: 'every' })
    const reply = await h.refresh(refreshToken)
    expect(reply.status).toBe(503)
    expect(faults.calls.filter((call) => call.command === 'BatchGetItem')).toHaveLength(1)
    expect(attempts.get('BatchGetItem')).toBe(budget.request)
    faults.clear()
    expect((await h.refresh(refreshToken)).status).toBe(200)
  })

  it('a store method refused by a transaction in progress is requested storeAttempts times, each with its SDK attempts; then 503', async () => {
    // The login's turn is a single-item UpdateItem; each request is throttled once
    // (the SDK retries it), then refused by a transaction in progress (ours does).
    faults.arm(...throttledOnce('UpdateItem', RETRIES.storeAttempts), {
      command: 'UpdateItem',
      fault: 'TransactionConflict',
      attempts: 'every',
    })
    const reply = await h.login(user)
    expect(reply.status).toBe(503)
    expect(faults.calls.filter((call) => call.command === 'UpdateItem')).toHaveLength(
      RETRIES.storeAttempts,
    )
    expect(attempts.get('UpdateItem')).toBe(budget.storeCall)
  })

  it('a rotation that collisions keep cancelling runs rotationAttempts rounds of write and re-read, each with its SDK attempts; then 503, the token still good', async () => {
    const refreshToken = (await h.login(user)).body.refresh_token
    faults.clear()
    attempts.clear()
    // Every rotation write (the session's conditional UpdateItem) is throttled once, then
    // loses its condition with no session back (nothing written); every re-read of the
    // session is throttled once.
    faults.arm(
      ...throttledOnce('UpdateItem', RETRIES.rotationAttempts),
      { command: 'UpdateItem', fault: 'ConditionalCheckFailed' },
      ...throttledOnce('GetItem', RETRIES.rotationAttempts),
    )
    const reply = await h.refresh(refreshToken)
    expect(reply.status).toBe(503)
    const calls = (command: DynamoCommand) =>
      faults.calls.filter((call) => call.command === command).length
    expect({ writes: calls('UpdateItem'), reads: calls('GetItem') }).toEqual({
      writes: RETRIES.rotationAttempts,
      reads: RETRIES.rotationAttempts,
    })
    expect((attempts.get('UpdateItem') ?? 0) + (attempts.get('GetItem') ?? 0)).toBe(budget.rotation)
    // Nothing was lost: the presented token still rotates.
    faults.clear()
    expect((await h.refresh(refreshToken)).status).toBe(200)
  })
})
