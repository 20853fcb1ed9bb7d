/**
 * Throttling that loses nothing (issue 17), through what `cdk synth` produces:
 * the KMS and DynamoDB stand-ins throttle above a set rate per window, as KMS's
 * request quota and a table's throughput do. A throttled refresh answers 503
 * `temporarily_unavailable` with `Retry-After`, commits nothing, and the
 * client's retry after `Retry-After` (the window moved, the clock advanced
 * rather than slept) rotates; a duplicate within grace gets the same child; no
 * session is revoked for it. With envelope signing no refresh touches KMS, so
 * KMS's quota bounds nothing.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { hashToken, parseRefreshToken } from '../../functions/core/refresh-token.js'
import { items } from '../support/items.js'
import { client, type Reply, seedUser } from './api.js'
import { type Assembly, synthesize } from './assembly.js'
import { Cloud } from './cloud.js'
import { Deployment } from './deployment.js'

/** demo-native's `reuse_grace_seconds`. */
const GRACE_SECONDS = 10
const SESSIONS = 16

const configurations = {
  kms: { stackName: 'TokenServiceThrottled' },
  envelope: { stackName: 'TokenServiceThrottledEnvelope', signing: 'envelope' },
}
type Mode = keyof typeof configurations

let assembly: Assembly<Mode>
const dynamodbLocal = inject('dynamoEndpoint')
const cloud = new Cloud(dynamodbLocal)
const report: string[] = []

beforeAll(async () => {
  assembly = synthesize(configurations)
  await cloud.start()
}, 240_000)

afterEach(() => {
  cloud.limits = {}
  cloud.nextWindow()
})

afterAll(async () => {
  console.log(`Throttling, per round of retries:\n${report.join('\n')}`)
  await cloud.stop()
  assembly?.remove()
})

function deploy(mode: Mode) {
  const state = {} as { deployment: Deployment; api: ReturnType<typeof client>; user: string }
  beforeAll(async () => {
    state.deployment = await Deployment.start(cloud, { functions: assembly.templates[mode] })
    state.api = client(state.deployment)
    state.user = await seedUser(state.deployment, dynamodbLocal)
    // Warm containers: cold starts, public keys and data keys are not what is measured.
    const warm = await state.api.session(state.user)
    await state.api.refresh(warm.refresh_token)
  })
  afterAll(async () => {
    cloud.limits = {}
    await state.deployment.stop()
  })
  return state
}

/** The session items of these refresh tokens, as stored now. */
async function sessionsOf(deployment: Deployment, tokens: readonly string[]) {
  const dynamodb = new DynamoDBClient({
    endpoint: dynamodbLocal,
    region: 'local',
    credentials: { accessKeyId: 'operator', secretAccessKey: 'operator' },
  })
  const table = items(dynamodb, deployment.tableName)
  const found = await Promise.all(
    tokens.map(async (token) => (await table.session(parseRefreshToken(token)?.sid ?? '')).session),
  )
  dynamodb.destroy()
  return found
}

/**
 * Refreshes every token at once, then, as a client does, retries each refused one after its
 * `Retry-After` (the rate window moves and the clock advances by it) until all succeed.
 * Returns the final answers and how many were throttled in each round.
 */
async function refreshAllWithRetries(
  state: { deployment: Deployment; api: ReturnType<typeof client> },
  tokens: readonly string[],
) {
  const answers: Reply[] = new Array(tokens.length)
  let pending = tokens.map((_, index) => index)
  const throttledPerRound: number[] = []
  for (let round = 0; pending.length > 0; round++) {
    if (round > 20) throw new Error('refreshes kept being throttled')
    const replies = await Promise.all(
      pending.map((index) => state.api.refresh(tokens[index] as string)),
    )
    const refused: number[] = []
    let wait = 0
    for (const [n, reply] of replies.entries()) {
      const index = pending[n] as number
      answers[index] = reply
      if (reply.status === 200) continue
      expect(reply.status).toBe(503)
      expect(reply.body).toEqual({
        error: 'temporarily_unavailable',
        error_description: expect.any(String),
      })
      const retryAfter = reply.headers.get('retry-after')
      expect(retryAfter).toMatch(/^[1-9]\d*$/)
      wait = Math.max(wait, Number(retryAfter))
      refused.push(index)
    }
    throttledPerRound.push(refused.length)
    pending = refused
    if (pending.length > 0) {
      cloud.nextWindow()
      state.deployment.advanceClock(wait * 1000)
    }
  }
  return { answers, throttledPerRound }
}

describe('KMS signing, with KMS throttling above 4 requests per window', () => {
  const stack = deploy('kms')

  it('answers each throttled refresh 503 with Retry-After and commits nothing; the retry after it rotates, once; no session is revoked', async () => {
    const tokens: string[] = []
    for (let n = 0; n < SESSIONS; n++)
      tokens.push((await stack.api.session(stack.user)).refresh_token)
    cloud.nextWindow()
    cloud.limits = { kms: 4 }
    const before = await sessionsOf(stack.deployment, tokens)
    const { answers, throttledPerRound } = await refreshAllWithRetries(stack, tokens)
    report.push(
      `  kms, ${SESSIONS} refreshes, KMS at 4 a window: throttled per round ${throttledPerRound.join(', ')}`,
    )
    // KMS refused some of them at first: the test throttled for real.
    expect(throttledPerRound[0]).toBeGreaterThan(0)
    const after = await sessionsOf(stack.deployment, tokens)
    for (const [index, session] of after.entries()) {
      // Exactly one rotation, to the child the final answer carries; never revoked.
      expect(session?.status).toBe('active')
      expect(session?.generation).toBe((before[index]?.generation as number) + 1)
      expect(session?.current_hash).toBe(hashToken(answers[index]?.body.refresh_token))
    }
    cloud.limits = {}
  })

  it('gives a duplicate refresh throttled within grace the same child after Retry-After, and keeps the session', async () => {
    cloud.limits = {}
    const first = await stack.api.session(stack.user)
    const rotated = await stack.api.refresh(first.refresh_token)
    expect(rotated.status).toBe(200)
    // A second tab presents the same token at once, while KMS is out of quota.
    cloud.nextWindow()
    cloud.limits = { kms: 0 }
    const throttled = await stack.api.refresh(first.refresh_token)
    expect(throttled.status).toBe(503)
    const wait = Number(throttled.headers.get('retry-after'))
    expect(wait).toBeLessThan(GRACE_SECONDS)
    cloud.nextWindow()
    cloud.limits = {}
    stack.deployment.advanceClock(wait * 1000)
    const retried = await stack.api.refresh(first.refresh_token)
    expect(retried.status).toBe(200)
    expect(retried.body.refresh_token).toBe(rotated.body.refresh_token)
    const [session] = await sessionsOf(stack.deployment, [first.refresh_token])
    expect(session?.status).toBe('active')
    expect((await stack.api.refresh(retried.body.refresh_token)).status).toBe(200)
  })

  it('answers refreshes throttled by DynamoDB the same way, and loses none', async () => {
    const tokens: string[] = []
    for (let n = 0; n < SESSIONS / 2; n++)
      tokens.push((await stack.api.session(stack.user)).refresh_token)
    cloud.nextWindow()
    // A refresh makes three DynamoDB requests (24 in all): some get through, some are refused.
    cloud.limits = { dynamodb: 20 }
    const { answers, throttledPerRound } = await refreshAllWithRetries(stack, tokens)
    report.push(
      `  kms, ${tokens.length} refreshes, DynamoDB at 20 requests a window: throttled per round ${throttledPerRound.join(', ')}`,
    )
    cloud.limits = {}
    expect(throttledPerRound[0]).toBeGreaterThan(0)
    const after = await sessionsOf(stack.deployment, tokens)
    for (const [index, session] of after.entries()) {
      expect(session?.status).toBe('active')
      expect(session?.current_hash).toBe(hashToken(answers[index]?.body.refresh_token))
    }
  })

  it('makes no AWS call its IAM policy does not allow', () => {
    expect(stack.deployment.denials()).toEqual([])
  })
})

describe('envelope signing, with the same KMS throttling', () => {
  const stack = deploy('envelope')

  it('refreshes every session at once: no refresh waits for KMS', async () => {
    const tokens: string[] = []
    for (let n = 0; n < SESSIONS; n++)
      tokens.push((await stack.api.session(stack.user)).refresh_token)
    cloud.nextWindow()
    cloud.limits = { kms: 0 }
    const { throttledPerRound } = await refreshAllWithRetries(stack, tokens)
    report.push(
      `  envelope, ${SESSIONS} refreshes, KMS at 0 a window: throttled per round ${throttledPerRound.join(', ')}`,
    )
    cloud.limits = {}
    expect(throttledPerRound).toEqual([0])
  })

  it('makes no AWS call its IAM policy does not allow', () => {
    expect(stack.deployment.denials()).toEqual([])
  })
})
