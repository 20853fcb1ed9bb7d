import { type DynamoDBClient, InternalServerError } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { FakeKms, throttling } from '../support/fake-kms.js'
import { type Harness, startHarness } from '../support/harness.js'

interface Call {
  name: string
  start: number
  end: number
}

/** Records every AWS call, and fails the commands named in `failing` (once each) when armed. */
class AwsProbe {
  readonly calls: Call[] = []
  readonly failing = new Set<string>()
  signDelayMs = 0

  instrumentDynamo(client: DynamoDBClient): DynamoDBClient {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = context.commandName as string
        const call = { name, start: performance.now(), end: Number.NaN }
        this.calls.push(call)
        try {
          if (this.failing.delete(name)) {
            throw new InternalServerError({
              message: 'injected fault',
              $metadata: { httpStatusCode: 500 },
            })
          }
          return await next(args)
        } finally {
          call.end = performance.now()
        }
      },
      { step: 'initialize', name: 'awsProbe' },
    )
    return client
  }

  instrumentKms(kms: FakeKms): void {
    const send = kms.client.send.bind(kms.client) as (command: unknown) => Promise<unknown>
    kms.client.send = (async (command: { constructor: { name: string } }) => {
      const call = { name: command.constructor.name, start: performance.now(), end: Number.NaN }
      this.calls.push(call)
      try {
        if (call.name === 'SignCommand' && this.signDelayMs) {
          await new Promise((resolve) => setTimeout(resolve, this.signDelayMs))
        }
        return await send(command)
      } finally {
        call.end = performance.now()
      }
    }) as typeof kms.client.send
  }
}

const probe = new AwsProbe()
const kms = new FakeKms()
let h: Harness
let user: User

beforeAll(async () => {
  probe.instrumentKms(kms)
  h = await startHarness({
    env: { SIGNING_KEY_ID: 'alias/rsa-active' },
    kms: kms.client,
    dynamodb: (client) => probe.instrumentDynamo(client),
  })
  user = await h.addUser()
})
afterAll(() => h.close())

describe('rule 7: nothing is lost on a fault', () => {
  it('answers 503 with Retry-After when the DynamoDB write fails, and the presented token still works', async () => {
    const token = (await h.login(user)).body.refresh_token
    probe.failing.add('UpdateItemCommand')
    const failed = await h.refresh(token)
    expect(failed.status).toBe(503)
    expect(failed.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(failed.body).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
    })
    expect(failed.text).not.toContain('injected')
    const retried = await h.refresh(token)
    expect(retried.status).toBe(200)
    expect(retried.body.refresh_token).not.toBe(token)
  })

  it('answers 503 with Retry-After when the KMS sign is throttled, and the presented token still works', async () => {
    const token = (await h.login(user)).body.refresh_token
    kms.failNext('Sign', throttling())
    const failed = await h.refresh(token)
    expect(failed.status).toBe(503)
    expect(failed.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(failed.body.error).toBe('temporarily_unavailable')
    // Nothing was committed: the retry rotates, and replaying the token within grace gets its child.
    const retried = await h.refresh(token)
    expect(retried.status).toBe(200)
    const again = await h.refresh(token)
    expect(again.body.refresh_token).toBe(retried.body.refresh_token)
    expect((await h.refresh(retried.body.refresh_token)).status).toBe(200)
  })

  it('answers 503 when the batched read fails, and changes nothing', async () => {
    const token = (await h.login(user)).body.refresh_token
    probe.failing.add('BatchGetItemCommand')
    expect((await h.refresh(token)).status).toBe(503)
    expect((await h.refresh(token)).status).toBe(200)
  })
})

describe('refresh success path', () => {
  it('reads once (batched, first), then signs alongside the retired token’s record, and writes the session only once both are done', async () => {
    const token = (await h.login(user)).body.refresh_token
    probe.signDelayMs = 60
    probe.calls.length = 0
    const reply = await h.refresh(token)
    probe.signDelayMs = 0
    expect(reply.status).toBe(200)
    const names = probe.calls.map((call) => call.name)
    expect(names.sort()).toEqual([
      'BatchGetItemCommand',
      'PutItemCommand',
      'SignCommand',
      'UpdateItemCommand',
    ])
    const call = (name: string) => probe.calls.find((c) => c.name === name) as Call
    const read = call('BatchGetItemCommand')
    const sign = call('SignCommand')
    const record = call('PutItemCommand')
    const rotation = call('UpdateItemCommand')
    expect(read.end).toBeLessThanOrEqual(sign.start)
    expect(read.end).toBeLessThanOrEqual(record.start)
    // Overlap: the signature runs alongside the record.
    expect(sign.start).toBeLessThan(record.end)
    expect(record.start).toBeLessThan(sign.end)
    // The rotation commits only once its token is signed and the record is durable.
    expect(sign.end).toBeLessThanOrEqual(rotation.start)
    expect(record.end).toBeLessThanOrEqual(rotation.start)
  })
})
