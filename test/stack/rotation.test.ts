/**
 * The key rotation of docs/operations.md "Key rotation", through what `cdk synth`
 * produces: each step's template, with the grants bin/app.ts derives from the key
 * ledger, deployed fully and half applied in either order. A CloudFormation
 * update applies a function's policy before the function (DependsOn), and IAM is
 * eventually consistent, so both halves are real: new policies with the old
 * functions, old policies with the new functions. A key the update creates
 * exists in both halves; a key it removes is deleted after both (CloudFormation's
 * clean-up phase). Either way no request may fail (docs/design.md "Deployed stack").
 */
import { readFileSync } from 'node:fs'
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms'
import { decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { keyChangeRules } from '../../lib/app-context.js'
import {
  checkKeyChange,
  type KeyLedger,
  type SigningKeySpec,
  transitionSigningKeys,
} from '../../lib/signing-keys.js'
import { client, seedUser, type Tokens } from './api.js'
import { type Assembly, synthesize } from './assembly.js'
import { Cloud, REGION } from './cloud.js'
import { Deployment } from './deployment.js'

const keys = (...list: [string, 'active' | 'retiring'][]) => ({
  signingKeys: JSON.stringify(list.map(([id, state]) => ({ id, state }))),
})
/** The runbook's states, in order: as deployed before, after each of its three deployments. */
const steps = {
  k1: keys(['k1', 'active']),
  k2published: keys(['k1', 'active'], ['k2', 'retiring']),
  k2active: keys(['k2', 'active'], ['k1', 'retiring']),
  k1removed: keys(['k2', 'active']),
}
type Step = keyof typeof steps
const order = Object.keys(steps) as Step[]
const STEP_TITLES: Record<Step, string> = {
  k1: '[k1 active]',
  k2published: '[k1 active, k2 retiring]',
  k2active: '[k2 active, k1 retiring]',
  k1removed: '[k2 active]',
}

/**
 * What bin/app.ts passes each step from the key ledger: the runbook at its earliest safe
 * times (a step refused by the ledger fails here), and each step's transition keys.
 */
function ledgerProps(): Record<Step, { transitionSigningKeys: string[] }> {
  const clients = JSON.parse(readFileSync('clients.local.json', 'utf8')) as ClientConfig[]
  let ledger: KeyLedger | undefined
  let now = Date.parse('2026-05-01T00:00:00Z')
  const props = {} as Record<Step, { transitionSigningKeys: string[] }>
  for (const step of order) {
    const list = JSON.parse(steps[step].signingKeys) as SigningKeySpec[]
    const rules = keyChangeRules({ clients }, new Date(now))
    const { problems, next } = checkKeyChange(ledger, list, rules)
    if (problems.length > 0) throw new Error(`${step}: ${problems.join('; ')}`)
    ledger = next
    props[step] = { transitionSigningKeys: transitionSigningKeys(next) }
    now += Math.max(rules.publishWaitSeconds, rules.retireWaitSeconds) * 1000
  }
  return props
}

let assembly: Assembly<Step>
const dynamodbLocal = inject('dynamoEndpoint')
// One account for every step: the table and the keys outlive each deployment.
const cloud = new Cloud(dynamodbLocal)
const findings: string[] = []

const transitions = ledgerProps()

beforeAll(async () => {
  assembly = synthesize(steps, transitions)
  await cloud.start()
}, 240_000)

afterAll(async () => {
  console.log(`Key rotation, AWS calls denied per deployment state:\n${findings.join('\n')}`)
  await cloud.stop()
  assembly?.remove()
})

/** Runs `check` against a deployment, then stops it and notes what IAM denied. */
async function withDeployment(
  title: string,
  functions: Step,
  rest: Step,
  check: (deployment: Deployment) => Promise<void>,
) {
  const deployment = await Deployment.start(cloud, {
    functions: assembly.templates[functions],
    rest: assembly.templates[rest],
  })
  try {
    await check(deployment)
  } finally {
    const denied = deployment.denials()
    findings.push(`  ${title}: ${denied.length ? denied.join('; ') : 'none'}`)
    await deployment.stop()
  }
}

/**
 * What must keep working across every state of a rotation, for tokens issued before it and
 * during it. Soft assertions: every request is made, so that the report lists every denial.
 */
async function expectEveryRequestServed(deployment: Deployment, user: string, before: Tokens) {
  const api = client(deployment)
  expect.soft((await api.me(before.access_token)).status, '/me, token from before').toBe(200)
  const refreshed = await api.refresh(before.refresh_token)
  expect.soft(refreshed.status, 'refresh, token from before').toBe(200)
  const login = await api.login(user)
  expect.soft(login.status, 'login').toBe(200)
  const issued: string[] = [refreshed.body.access_token, login.body.access_token].filter(Boolean)
  for (const token of issued) expect.soft((await api.me(token)).status, '/me, new token').toBe(200)
  const jwks = await api.call('GET', '/.well-known/jwks.json')
  expect.soft(jwks.status, 'JWKS').toBe(200)
  const kids = (jwks.body.keys ?? []).map((key: { kid: string }) => key.kid)
  for (const token of [before.access_token, ...issued]) {
    expect
      .soft(kids, 'JWKS lists the key of every live token')
      .toContain(decodeProtectedHeader(token).kid)
  }
  expect(deployment.denials()).toEqual([])
}

describe('key rotation through the synthesized stack', () => {
  it('lets login and token sign with the incoming key before the switch and the outgoing key after it', () => {
    expect(transitions).toEqual({
      k1: { transitionSigningKeys: [] },
      k2published: { transitionSigningKeys: ['k2'] },
      k2active: { transitionSigningKeys: ['k1'] },
      k1removed: { transitionSigningKeys: [] },
    })
  })

  it('grants Sign only for a SHA-256 digest with the key’s algorithm, as the signer sends it', async () => {
    const deployment = await Deployment.start(cloud, { functions: assembly.templates.k1 })
    try {
      const kmsAs = (name: string) => {
        const fn = deployment.functions.get(name)
        if (!fn) throw new Error(`no ${name} function`)
        const kms = new KMSClient({
          region: REGION,
          endpoint: cloud.endpoint,
          credentials: { accessKeyId: fn.caller.accessKeyId, secretAccessKey: 'unchecked' },
          maxAttempts: 1,
        })
        return { kms, keyId: fn.lambda.options.environment.SIGNING_KEY_ID as string }
      }
      const { kms, keyId } = kmsAs('login')
      const sign = (MessageType: 'RAW' | 'DIGEST', SigningAlgorithm: string) =>
        kms
          .send(
            new SignCommand({
              KeyId: keyId,
              Message: new Uint8Array(32),
              MessageType,
              SigningAlgorithm: SigningAlgorithm as 'RSASSA_PKCS1_V1_5_SHA_256',
            }),
          )
          .then(
            () => 'signed',
            (error: Error) => error.name,
          )
      expect(await sign('DIGEST', 'RSASSA_PKCS1_V1_5_SHA_256')).toBe('signed')
      expect(await sign('RAW', 'RSASSA_PKCS1_V1_5_SHA_256')).toBe('AccessDeniedException')
      expect(await sign('DIGEST', 'RSASSA_PSS_SHA_256')).toBe('AccessDeniedException')
      const jwks = kmsAs('jwks')
      const jwksSign = await jwks.kms
        .send(
          new SignCommand({
            KeyId: jwks.keyId,
            Message: new Uint8Array(32),
            MessageType: 'DIGEST',
            SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256',
          }),
        )
        .then(
          () => 'signed',
          (error: Error) => error.name,
        )
      expect(jwksSign).toBe('AccessDeniedException')
      const publicKey = await jwks.kms.send(new GetPublicKeyCommand({ KeyId: jwks.keyId }))
      expect(publicKey.PublicKey?.length).toBeGreaterThan(0)
      kms.destroy()
      jwks.kms.destroy()
    } finally {
      await deployment.stop()
    }
  })

  it('serves every request at every step of the runbook, applied fully', async () => {
    let user = ''
    let tokens: Tokens | undefined
    for (const step of order) {
      await withDeployment(`${STEP_TITLES[step]} fully applied`, step, step, async (deployment) => {
        user ||= await seedUser(deployment, dynamodbLocal)
        if (tokens) await expectEveryRequestServed(deployment, user, tokens)
        tokens = await client(deployment).session(user)
      })
    }
  })

  for (const [index, from] of order.slice(0, -1).entries()) {
    const to = order[index + 1] as Step
    describe(`rotation ${STEP_TITLES[from]} -> ${STEP_TITLES[to]}, half applied`, () => {
      let user = ''
      const before: Tokens[] = []
      beforeAll(async () => {
        await withDeployment(
          `${STEP_TITLES[from]} fully applied`,
          from,
          from,
          async (deployment) => {
            user = await seedUser(deployment, dynamodbLocal)
            before.push(
              await client(deployment).session(user),
              await client(deployment).session(user),
            )
          },
        )
      })

      for (const [half, functions, rest] of [
        ['new policies, old functions', from, to],
        ['old policies, new functions', to, from],
      ] as const) {
        const title = `${STEP_TITLES[from]} -> ${STEP_TITLES[to]}, ${half}`
        it(`${half}: login, refresh, /me and JWKS all work, for tokens from before and after`, async () => {
          await withDeployment(title, functions, rest, (deployment) =>
            expectEveryRequestServed(
              deployment,
              user,
              before[half.startsWith('new') ? 0 : 1] as Tokens,
            ),
          )
        })
      }
    })
  }
})
