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
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DecryptCommand, GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms'
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb'
import { decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { envelopeContext } from '../../functions/adapters/envelope-signer.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import { keyChangeRules } from '../../lib/key-ledger.js'
import {
  checkKeyChange,
  type KeyLedger,
  type SigningKeySpec,
  signingKeyModes,
  transitionSigningKeys,
} from '../../lib/signing-keys.js'
import type { TokenServiceStackProps } from '../../lib/token-service-stack.js'
import { client, seedUser, type Tokens } from './api.js'
import { type Assembly, synthesize } from './assembly.js'
import { Cloud, REGION } from './cloud.js'
import { Deployment } from './deployment.js'

const keys = (...list: [string, 'active' | 'retiring'][]) => ({
  signingKeys: JSON.stringify(list.map(([id, state]) => ({ id, state }))),
})
/** The runbook's states, in order: as deployed before, after each of its three deployments. */
const STEPS = {
  k1: keys(['k1', 'active']),
  k2published: keys(['k1', 'active'], ['k2', 'retiring']),
  k2active: keys(['k2', 'active'], ['k1', 'retiring']),
  k1removed: keys(['k2', 'active']),
}
type Step = keyof typeof STEPS
/**
 * The same runbook with KMS keys (a Sign per token), with envelope keys (in memory), and as
 * the switch from one to the other: k1 added under `signing: kms`, `signing: envelope` set
 * with k2's addition, so k2 is an envelope key while k1 stays a KMS key until removed.
 */
const MODES = ['kms', 'envelope', 'switch'] as const
type Mode = (typeof MODES)[number]
type SigningMode = 'kms' | 'envelope'
const signingAt = (mode: Mode, step: Step): SigningMode =>
  mode === 'switch' ? (step === 'k1' ? 'kms' : 'envelope') : mode
const STACK_NAMES: Record<Mode, string> = {
  kms: 'TokenServiceRotation',
  envelope: 'TokenServiceRotationEnvelope',
  switch: 'TokenServiceRotationSwitch',
}
const stepsOf = (mode: Mode) =>
  Object.fromEntries(
    Object.entries(STEPS).map(([step, context]) => [
      step,
      { ...context, signing: signingAt(mode, step as Step), stackName: STACK_NAMES[mode] },
    ]),
  ) as unknown as Record<Step, Record<string, string>>
const order = Object.keys(STEPS) as Step[]
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
function ledgerProps(
  mode: Mode,
): Record<Step, Pick<TokenServiceStackProps, 'transitionSigningKeys' | 'signingKeyModes'>> {
  const clients = JSON.parse(readFileSync('clients.local.json', 'utf8')) as ClientConfig[]
  let ledger: KeyLedger | undefined
  let now = Date.parse('2026-05-01T00:00:00Z')
  const props = {} as Record<
    Step,
    { transitionSigningKeys: string[]; signingKeyModes: Record<string, SigningMode> }
  >
  for (const step of order) {
    const list = JSON.parse(STEPS[step].signingKeys) as SigningKeySpec[]
    const rules = keyChangeRules({ clients, signing: signingAt(mode, step) }, new Date(now))
    const { problems, next } = checkKeyChange(ledger, list, rules)
    if (problems.length > 0) throw new Error(`${step}: ${problems.join('; ')}`)
    ledger = next
    props[step] = {
      transitionSigningKeys: transitionSigningKeys(next),
      signingKeyModes: signingKeyModes(next),
    }
    now += Math.max(rules.publishWaitSeconds, rules.retireWaitSeconds) * 1000
  }
  return props
}

/** A step's stack in one signing mode: `kms-k1`, `envelope-k2active`, ... */
type Name = `${Mode}-${Step}`
const nameOf = (mode: Mode, step: Step): Name => `${mode}-${step}`

let assembly: Assembly<Name>
const dynamodbLocal = inject('dynamoEndpoint')
// One account for every step: the table and the keys outlive each deployment.
const cloud = new Cloud(dynamodbLocal)
const findings: string[] = []

const transitions = Object.fromEntries(MODES.map((mode) => [mode, ledgerProps(mode)])) as Record<
  Mode,
  ReturnType<typeof ledgerProps>
>

beforeAll(async () => {
  const configurations = {} as Record<Name, Record<string, string>>
  const props = {} as Record<
    Name,
    Pick<TokenServiceStackProps, 'transitionSigningKeys' | 'signingKeyModes'>
  >
  for (const mode of MODES) {
    const steps = stepsOf(mode)
    for (const step of order) {
      configurations[nameOf(mode, step)] = steps[step]
      props[nameOf(mode, step)] = transitions[mode][step]
    }
  }
  assembly = synthesize(configurations, props)
  await cloud.start()
}, 480_000)

afterAll(async () => {
  console.log(`Key rotation, AWS calls denied per deployment state:\n${findings.join('\n')}`)
  await cloud.stop()
  assembly?.remove()
})

/** Runs `check` against a deployment, then stops it and notes what IAM denied. */
async function withDeployment(
  title: string,
  functions: Name,
  rest: Name,
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

/** The envelope keys' wrapped private keys in a table, by key id (an operator's scan). */
async function envelopeKeys(tableName: string): Promise<Record<string, string>> {
  const dynamodb = new DynamoDBClient({
    endpoint: dynamodbLocal,
    region: REGION,
    credentials: { accessKeyId: 'operator', secretAccessKey: 'operator' },
  })
  const { Items = [] } = await DynamoDBDocumentClient.from(dynamodb).send(
    new ScanCommand({
      TableName: tableName,
      FilterExpression: 'sk = :key',
      ExpressionAttributeValues: { ':key': 'SIGNINGKEY' },
      ConsistentRead: true,
    }),
  )
  dynamodb.destroy()
  return Object.fromEntries(
    Items.map((item) => [String(item.pk).slice('SIGNINGKEY#'.length), item.wrapped_private_key]),
  )
}

/** A KMS client with a deployed function's credentials, and what its environment names. */
function kmsAs(deployment: Deployment, name: string) {
  const fn = deployment.functions.get(name)
  if (!fn) throw new Error(`no ${name} function`)
  const kms = new KMSClient({
    region: REGION,
    endpoint: cloud.endpoint,
    credentials: { accessKeyId: fn.caller.accessKeyId, secretAccessKey: 'unchecked' },
    maxAttempts: 1,
  })
  return { kms, environment: fn.lambda.options.environment }
}

const outcome = (call: Promise<unknown>) =>
  call.then(
    () => 'allowed',
    (error: Error) => error.name,
  )

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

for (const mode of MODES) {
  describe(`key rotation through the synthesized stack, ${mode} signing`, () => {
    it('lets login and token sign with the incoming key before the switch and the outgoing key after it; each key keeps the mode it was added with', () => {
      const k1 = signingAt(mode, 'k1')
      const k2 = signingAt(mode, 'k2published')
      expect(transitions[mode]).toEqual({
        k1: { transitionSigningKeys: [], signingKeyModes: { k1 } },
        k2published: { transitionSigningKeys: ['k2'], signingKeyModes: { k1, k2 } },
        k2active: { transitionSigningKeys: ['k1'], signingKeyModes: { k1, k2 } },
        k1removed: { transitionSigningKeys: [], signingKeyModes: { k2 } },
      })
    })

    if (mode === 'kms') {
      it('grants Sign only for a SHA-256 digest with the key’s algorithm, as the signer sends it', async () => {
        const deployment = await Deployment.start(cloud, {
          functions: assembly.templates[nameOf(mode, 'k1')],
        })
        try {
          const login = kmsAs(deployment, 'login')
          const keyId = login.environment.SIGNING_KEY_ID as string
          const sign = (
            as: typeof login,
            MessageType: 'RAW' | 'DIGEST',
            SigningAlgorithm: string,
          ) =>
            outcome(
              as.kms.send(
                new SignCommand({
                  KeyId: keyId,
                  Message: new Uint8Array(32),
                  MessageType,
                  SigningAlgorithm: SigningAlgorithm as 'RSASSA_PKCS1_V1_5_SHA_256',
                }),
              ),
            )
          expect(await sign(login, 'DIGEST', 'RSASSA_PKCS1_V1_5_SHA_256')).toBe('allowed')
          expect(await sign(login, 'RAW', 'RSASSA_PKCS1_V1_5_SHA_256')).toBe(
            'AccessDeniedException',
          )
          expect(await sign(login, 'DIGEST', 'RSASSA_PSS_SHA_256')).toBe('AccessDeniedException')
          const jwks = kmsAs(deployment, 'jwks')
          expect(await sign(jwks, 'DIGEST', 'RSASSA_PKCS1_V1_5_SHA_256')).toBe(
            'AccessDeniedException',
          )
          const publicKey = await jwks.kms.send(new GetPublicKeyCommand({ KeyId: keyId }))
          expect(publicKey.PublicKey?.length).toBeGreaterThan(0)
          login.kms.destroy()
          jwks.kms.destroy()
        } finally {
          await deployment.stop()
        }
      })
    } else if (mode === 'envelope') {
      it('lets only login and token unwrap a private key, only of a key they may sign with, and only with its context', async () => {
        const deployment = await Deployment.start(cloud, {
          functions: assembly.templates[nameOf(mode, 'k2published')],
        })
        try {
          const user = await seedUser(deployment, dynamodbLocal)
          // Login generates k1 (it signs), JWKS k2 (it publishes it).
          await client(deployment).session(user)
          expect((await client(deployment).call('GET', '/.well-known/jwks.json')).status).toBe(200)
          const stored = await envelopeKeys(deployment.tableName)
          const login = kmsAs(deployment, 'login')
          const wrappingKey = login.environment.ENVELOPE_KEY_ID as string
          const owner = login.environment.SIGNING_KEY_OWNER as string
          const unwrap = (as: typeof login, id: string, context = envelopeContext(owner, id)) =>
            outcome(
              as.kms.send(
                new DecryptCommand({
                  KeyId: wrappingKey,
                  CiphertextBlob: Buffer.from(stored[id] as string, 'base64'),
                  EncryptionContext: context,
                }),
              ),
            )
          expect(await unwrap(login, 'k1')).toBe('allowed')
          // k2 is incoming: a transition key, which login may sign with once the switch lands.
          expect(await unwrap(login, 'k2')).toBe('allowed')
          expect(
            await unwrap(login, 'k1', { ...envelopeContext(owner, 'k1'), owner: 'Other/Stack' }),
          ).toBe('AccessDeniedException')
          const jwks = kmsAs(deployment, 'jwks')
          expect(await unwrap(jwks, 'k1')).toBe('AccessDeniedException')
          const revoke = kmsAs(deployment, 'revoke')
          expect(await unwrap(revoke, 'k1')).toBe('AccessDeniedException')
          for (const as of [login, jwks, revoke]) as.kms.destroy()
        } finally {
          await deployment.stop()
        }
      })
    }

    it('serves every request at every step of the runbook, applied fully', async () => {
      let user = ''
      let tokens: Tokens | undefined
      for (const step of order) {
        const name = nameOf(mode, step)
        await withDeployment(
          `${mode}: ${STEP_TITLES[step]} fully applied`,
          name,
          name,
          async (deployment) => {
            user ||= await seedUser(deployment, dynamodbLocal)
            if (tokens) await expectEveryRequestServed(deployment, user, tokens)
            tokens = await client(deployment).session(user)
          },
        )
      }
    })

    for (const [index, from] of order.slice(0, -1).entries()) {
      const to = order[index + 1] as Step
      describe(`rotation ${STEP_TITLES[from]} -> ${STEP_TITLES[to]}, half applied`, () => {
        let user = ''
        const before: Tokens[] = []
        beforeAll(async () => {
          await withDeployment(
            `${mode}: ${STEP_TITLES[from]} fully applied`,
            nameOf(mode, from),
            nameOf(mode, from),
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
          const title = `${mode}: ${STEP_TITLES[from]} -> ${STEP_TITLES[to]}, ${half}`
          it(`${half}: login, refresh, /me and JWKS all work, for tokens from before and after`, async () => {
            await withDeployment(title, nameOf(mode, functions), nameOf(mode, rest), (deployment) =>
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
}
