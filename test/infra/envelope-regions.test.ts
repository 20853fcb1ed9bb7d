/**
 * Envelope signing in several regions (docs/multi-region.md "Envelope keys"): the keys
 * added with `regions` are wrapped under a multi-Region symmetric key, defined in the
 * primary's stack and replicated (`AWS::KMS::ReplicaKey`, same logical id) in the others';
 * each region's functions unwrap with their own region's copy, conditioned on the
 * encryption context; outside the primary, pairs are created in the primary's replica.
 * A stack deployed before `regions` keeps its single-Region wrapping key.
 */
import { Template } from 'aws-cdk-lib/assertions'
import { describe, expect, it } from 'vitest'
import { addNagPacks } from '../../lib/app-context.js'
import { type AppStacks, buildStacks, type LedgerFacts } from '../../lib/app-stacks.js'
import type { SigningKeySpec } from '../../lib/signing-keys.js'
import type { TokenServiceStack } from '../../lib/token-service-stack.js'
import { type Resource, synth, testApp, testClients } from './synth.js'

const REGIONS = ['eu-west-1', 'us-east-1']
const ISSUER = 'https://auth.example.com'
const OWNER = 'TokenService/TokenService'
const TAG = [{ Key: 'token-service:signing-key-of', Value: OWNER }]

type Statement = {
  Action: string | string[]
  Resource: unknown
  Condition?: Record<string, Record<string, unknown>>
}

interface Synthesized extends AppStacks {
  readonly templates: Record<string, Resource>[]
}

/** The app's stacks with `signing: 'envelope'` and `regions`, with cdk-nag, as bin/app.ts. */
function synthEnvelope(
  signingKeys: SigningKeySpec[],
  ledger: Omit<LedgerFacts, 'modes'> & { modes?: LedgerFacts['modes'] },
): Synthesized {
  const app = testApp()
  const built = buildStacks(
    app,
    {
      stackName: 'TokenService',
      props: { clients: testClients, issuer: ISSUER, signing: 'envelope', signingKeys },
      regions: REGIONS,
    },
    {
      modes: Object.fromEntries(signingKeys.map((key) => [key.id, 'envelope' as const])),
      ...ledger,
    },
  )
  addNagPacks(app)
  // cdk-nag runs as a policy-validation plugin: a finding fails here.
  app.synth()
  return {
    ...built,
    templates: built.stacks.map(
      (stack) => Template.fromStack(stack).toJSON().Resources as Record<string, Resource>,
    ),
  }
}

const ofType = (resources: Record<string, Resource>, type: string) =>
  Object.entries(resources).filter(([, resource]) => resource.Type === type)

const logicalIdOf = (stack: TokenServiceStack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never)

/** A function's resource and the statements of its role's policies. */
function fnOf(resources: Record<string, Resource>, name: string) {
  const prefix = `TokenService${name[0]?.toUpperCase()}${name.slice(1)}Function`
  const [id, fn] = ofType(resources, 'AWS::Lambda::Function').find(([logical]) =>
    logical.startsWith(prefix),
  ) as [string, Resource]
  const role = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
  const statements = ofType(resources, 'AWS::IAM::Policy')
    .filter(([, policy]) => JSON.stringify(policy.Properties.Roles) === `[{"Ref":"${role}"}]`)
    .flatMap(
      ([, policy]) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
    )
  const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables
  const naming = (action: string) =>
    statements.filter((statement) => [statement.Action].flat().includes(action))
  return { id, env, naming }
}

const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] })

describe('envelope signing with regions, added with them', () => {
  const two = synthEnvelope([{ id: 'k1', state: 'active' }], {
    transitionKeys: [],
    multiRegionKeys: ['k1'],
  })
  const [primary, secondary] = two.templates as [Record<string, Resource>, Record<string, Resource>]
  const [primaryStack] = two.stacks as [TokenServiceStack, TokenServiceStack]
  const wrappingId = logicalIdOf(
    primaryStack,
    primaryStack.service.envelopeSigning?.multiRegionKey as never,
  )

  it('synthesizes both regions, cdk-nag clean, with no KMS signing key and no single-Region wrapping key', () => {
    expect(two.stacks.map((stack) => stack.region)).toEqual(REGIONS)
    expect(two.waiting).toEqual([])
    for (const resources of two.templates) {
      expect(ofType(resources, 'AWS::KMS::Alias')).toEqual([])
      expect(
        Object.keys(resources).filter((id) => id.startsWith('TokenServiceSigningKey')),
      ).toEqual([])
      expect(
        Object.keys(resources).filter((id) =>
          /^TokenServiceEnvelopeSigningKey[0-9A-F]{8}$/.test(id),
        ),
      ).toEqual([])
    }
    expect(primaryStack.service.envelopeSigning?.key).toBeUndefined()
  })

  it('wraps with a multi-Region symmetric key in the primary and its replica elsewhere, under one logical id', () => {
    expect(wrappingId).toMatch(/^TokenServiceEnvelopeSigningMultiRegionKey/)
    const key = primary[wrappingId] as Resource
    expect(key.Type).toBe('AWS::KMS::Key')
    expect(key.Properties).toMatchObject({ MultiRegion: true, EnableKeyRotation: true, Tags: TAG })
    expect(key.Properties.KeySpec ?? 'SYMMETRIC_DEFAULT').toBe('SYMMETRIC_DEFAULT')
    const replica = secondary[wrappingId] as Resource
    expect(replica.Type).toBe('AWS::KMS::ReplicaKey')
    expect(JSON.stringify(replica.Properties.PrimaryKeyArn)).toMatch(/ImportedValue|Fn::GetAtt|Ref/)
    expect(replica.Properties.Tags).toEqual(TAG)
    expect(replica.DeletionPolicy).toBe(key.DeletionPolicy)
    expect(ofType(secondary, 'AWS::KMS::Key').map(([id]) => id)).not.toContain(wrappingId)
  })

  it('lets the key policies allow IAM to replicate the key and promote a replica, and use it only to unwrap and generate pairs', () => {
    for (const resource of [primary[wrappingId], secondary[wrappingId]] as Resource[]) {
      const policy = (
        resource.Properties.KeyPolicy as { Statement: (Statement & { Sid: string })[] }
      ).Statement
      const admin = policy.find((statement) => statement.Sid === 'KeyAdministration')
      expect(admin?.Action).toEqual(
        expect.arrayContaining(['kms:ReplicateKey', 'kms:UpdatePrimaryRegion']),
      )
      const use = policy.find((statement) => statement.Sid === 'KeyUse')
      expect([use?.Action].flat().sort()).toEqual([
        'kms:Decrypt',
        'kms:GenerateDataKeyPairWithoutPlaintext',
      ])
    }
  })

  it('gives each region’s functions their own region’s copy, one owner, and outside the primary the primary as where pairs are created', () => {
    for (const name of ['login', 'token', 'jwks']) {
      const here = fnOf(primary, name).env
      expect(here).toMatchObject({
        SIGNING_KEY_ID: name === 'jwks' ? expect.anything() : 'envelope:k1',
        ENVELOPE_MULTI_REGION_KEY_ID: arnOf(wrappingId),
        SIGNING_KEY_OWNER: OWNER,
      })
      expect(here).not.toHaveProperty('ENVELOPE_KEY_ID')
      expect(here).not.toHaveProperty('ENVELOPE_KEY_PAIR_REGION')
      const there = fnOf(secondary, name).env
      expect(there).toMatchObject({
        ENVELOPE_MULTI_REGION_KEY_ID: arnOf(wrappingId),
        SIGNING_KEY_OWNER: OWNER,
        ENVELOPE_KEY_PAIR_REGION: 'eu-west-1',
      })
      expect(there).not.toHaveProperty('ENVELOPE_KEY_ID')
    }
  })

  it('lets login and token unwrap and generate only their keys, with this service as owner, on their own region’s copy', () => {
    for (const resources of [primary, secondary]) {
      for (const name of ['login', 'token']) {
        const fn = fnOf(resources, name)
        // (The token function's other Decrypt is the grace key's.)
        const [decrypt, ...more] = fn
          .naming('kms:Decrypt')
          .filter((statement) => JSON.stringify(statement.Resource).includes('EnvelopeSigning'))
        expect(more).toEqual([])
        expect(decrypt?.Resource).toEqual(arnOf(wrappingId))
        expect(decrypt?.Condition).toEqual({
          StringEquals: {
            'kms:EncryptionContext:owner': OWNER,
            'kms:EncryptionContext:signing-key': ['k1'],
          },
        })
        const [generate] = fn.naming('kms:GenerateDataKeyPairWithoutPlaintext')
        expect(generate?.Resource).toEqual(arnOf(wrappingId))
        expect(generate?.Condition?.StringEquals).toMatchObject({
          'kms:EncryptionContext:signing-key': ['k1'],
          'kms:DataKeyPairSpec': 'RSA_2048',
        })
        expect(fn.naming('kms:Sign')).toEqual([])
      }
      // jwks generates (by tag: the replica is tagged too), never unwraps.
      expect(fnOf(resources, 'jwks').naming('kms:Decrypt')).toEqual([])
    }
  })

  it('lets the functions outside the primary read and create pairs in the primary’s replica, only their items; the primary’s functions nothing elsewhere', () => {
    for (const name of ['login', 'token', 'jwks']) {
      const remote = (resources: Record<string, Resource>) =>
        fnOf(resources, name)
          .naming('dynamodb:PutItem')
          .filter((statement) =>
            JSON.stringify(statement.Resource).includes(':dynamodb:eu-west-1:'),
          )
      const [there, ...more] = remote(secondary)
      expect(more, name).toEqual([])
      expect([there?.Action].flat().sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem'])
      expect(JSON.stringify(there?.Resource)).toContain(':table/TokenService-table')
      expect(there?.Condition).toEqual({
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SIGNINGKEY#*'] },
      })
      expect(remote(primary), name).toEqual([])
    }
    // No other function reaches the primary's replica.
    expect(JSON.stringify(fnOf(secondary, 'revoke').naming('dynamodb:PutItem'))).not.toContain(
      ':dynamodb:eu-west-1:',
    )
  })
})

describe('moving a deployed envelope stack to two regions (docs/operations.md "Moving to several regions")', () => {
  const single = synth(
    { signing: 'envelope', signingKeys: [{ id: 'k1', state: 'active' }] },
    'TokenService',
  )
  const singleKey = logicalIdOf(single.stack, single.stack.service.envelopeSigning?.key as never)

  it('keeps a key added before regions wrapped by its single-Region key, under its logical id, and the other region waits', () => {
    const step = synthEnvelope([{ id: 'k1', state: 'active' }], {
      transitionKeys: [],
      multiRegionKeys: [],
    })
    expect(step.stacks).toHaveLength(1)
    expect(step.waiting).toEqual([
      'TokenService-us-east-1: not synthesized while keys k1 are single-Region (added before regions); docs/operations.md "Moving to several regions"',
    ])
    const [resources] = step.templates as [Record<string, Resource>]
    expect(resources[singleKey]?.Type).toBe('AWS::KMS::Key')
    expect(resources[singleKey]?.Properties).not.toHaveProperty('MultiRegion')
    expect(resources[singleKey]?.Properties).toEqual(single.resources[singleKey]?.Properties)
    expect(
      ofType(resources, 'AWS::KMS::Key').filter(([, key]) => key.Properties.MultiRegion),
    ).toEqual([])
  })

  it('adds a multi-Region wrapping key beside it for a key added with regions: new pairs under it, both unwrap', () => {
    const step = synthEnvelope(
      [
        { id: 'k1', state: 'active' },
        { id: 'k2', state: 'retiring' },
      ],
      { transitionKeys: ['k2'], multiRegionKeys: ['k2'] },
    )
    expect(step.stacks).toHaveLength(1)
    expect(step.waiting[0]).toMatch(/keys k1 are single-Region/)
    const [resources] = step.templates as [Record<string, Resource>]
    const [stack] = step.stacks as [TokenServiceStack]
    const multi = logicalIdOf(stack, stack.service.envelopeSigning?.multiRegionKey as never)
    expect(resources[singleKey]?.Properties).toEqual(single.resources[singleKey]?.Properties)
    expect(resources[multi]?.Properties).toMatchObject({ MultiRegion: true })
    // Nothing of the deployed stack is replaced: each of its logical ids is still there.
    const ids = Object.keys(resources)
    const kept = Object.keys(single.resources).filter((id) => !ids.includes(id))
    expect(kept).toEqual([])
    const login = fnOf(resources, 'login')
    expect(login.env).toMatchObject({
      ENVELOPE_KEY_ID: arnOf(singleKey),
      ENVELOPE_MULTI_REGION_KEY_ID: arnOf(multi),
    })
    const [decrypt] = login.naming('kms:Decrypt')
    expect(decrypt?.Resource).toEqual([arnOf(singleKey), arnOf(multi)])
    const [generate] = login.naming('kms:GenerateDataKeyPairWithoutPlaintext')
    expect(generate?.Resource).toEqual(arnOf(multi))
  })

  it('synthesizes the other region once every listed key is multi-Region; the single-Region key leaves the template', () => {
    const step = synthEnvelope([{ id: 'k2', state: 'active' }], {
      transitionKeys: [],
      multiRegionKeys: ['k2'],
    })
    expect(step.stacks.map((stack) => stack.region)).toEqual(REGIONS)
    const [resources] = step.templates as [Record<string, Resource>]
    expect(resources[singleKey]).toBeUndefined()
    expect(fnOf(resources, 'token').env).not.toHaveProperty('ENVELOPE_KEY_ID')
  })
})
