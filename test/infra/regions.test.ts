import { Template } from 'aws-cdk-lib/assertions'
import { describe, expect, it } from 'vitest'
import { addNagPacks } from '../../lib/app-context.js'
import { type AppStacks, buildStacks, type LedgerFacts } from '../../lib/app-stacks.js'
import { readAppSettings } from '../../lib/config.js'
import { checkKeyChange, type KeyChangeRules } from '../../lib/signing-keys.js'
import type { TokenServiceStack, TokenServiceStackProps } from '../../lib/token-service-stack.js'
import committed from '../../token-service.config.js'
import { type Resource, synth, testApp, testClients } from './synth.js'

const REGIONS = ['eu-west-1', 'us-east-1']
const ISSUER = 'https://auth.example.com'
const ledger = (multiRegionKeys: string[]): LedgerFacts => ({
  transitionKeys: [],
  modes: { k1: 'kms' },
  multiRegionKeys,
})

/** The app's stacks for `regions`, synthesized with cdk-nag as bin/app.ts does. */
function synthRegions(
  props: Partial<TokenServiceStackProps> = {},
  multiRegionKeys = ['k1'],
  failover: 'relogin' | 'adopt' = 'relogin',
): AppStacks & { templates: Record<string, Resource>[] } {
  const app = testApp()
  const built = buildStacks(
    app,
    {
      stackName: 'TokenService',
      props: { clients: testClients, issuer: ISSUER, ...props },
      regions: REGIONS,
      failover,
    },
    ledger(multiRegionKeys),
  )
  addNagPacks(app)
  // cdk-nag runs as a policy-validation plugin: a finding fails here.
  app.synth()
  const templates = built.stacks.map(
    (stack) => Template.fromStack(stack).toJSON().Resources as Record<string, Resource>,
  )
  return { ...built, templates }
}

const ofType = (resources: Record<string, Resource>, type: string) =>
  Object.entries(resources).filter(([, resource]) => resource.Type === type)
const tableId = (stack: TokenServiceStack) =>
  stack.getLogicalId(stack.service.table.node.defaultChild as never)

describe('regions (config)', () => {
  const read = (config: unknown) =>
    readAppSettings(testApp(), { path: 'token-service.config.ts', config })

  it('leaves one region as it was when regions is absent', () => {
    expect(read(committed).regions).toBeUndefined()
  })

  it('reads regions, the primary first', () => {
    expect(read({ ...committed, regions: REGIONS, issuer: ISSUER }).regions).toEqual(REGIONS)
  })

  it('refuses regions without one issuer: each region’s API has its own endpoint', () => {
    expect(() => read({ ...committed, regions: REGIONS })).toThrow(
      /regions needs issuer \(or domain\): every region signs the same iss/,
    )
  })

  it('refuses fewer than two regions, a region twice, or a name that is no region, naming the key', () => {
    expect(() => read({ ...committed, issuer: ISSUER, regions: ['eu-west-1'] })).toThrow(
      /token-service\.config\.ts: regions must list at least 2 regions/,
    )
    expect(() =>
      read({ ...committed, issuer: ISSUER, regions: ['eu-west-1', 'eu-west-1'] }),
    ).toThrow(/regions must list each region once/)
    expect(() => read({ ...committed, issuer: ISSUER, regions: ['eu-west-1', 'Europe'] })).toThrow(
      /regions must list AWS region names such as "eu-west-1", got "Europe"/,
    )
  })

  it('takes failover relogin (the default) or adopt with regions, and refuses failover without regions or adopt during a table migration, naming the key', () => {
    const two = { ...committed, issuer: ISSUER, regions: REGIONS }
    expect(read(two).failover).toBe('relogin')
    expect(read({ ...two, failover: 'relogin' }).failover).toBe('relogin')
    expect(read({ ...two, failover: 'adopt' }).failover).toBe('adopt')
    expect(() =>
      read({ ...two, failover: 'adopt', tableMigration: 'import', tableName: 't' }),
    ).toThrow(
      /token-service\.config\.ts: failover "adopt" needs the move to several regions finished/,
    )
    expect(() => read({ ...committed, failover: 'relogin' })).toThrow(
      /token-service\.config\.ts: failover needs regions/,
    )
    expect(read(committed).failover).toBeUndefined()
  })

  it('refuses a table migration step without regions and the deployed table’s name', () => {
    expect(() => read({ ...committed, tableMigration: 'detach' })).toThrow(
      /tableMigration "detach" needs regions and tableName/,
    )
    expect(() =>
      read({
        ...committed,
        issuer: ISSUER,
        regions: REGIONS,
        tableMigration: 'import',
        tableName: 't',
      }),
    ).not.toThrow()
  })
})

describe('two regions from one config', () => {
  const two = synthRegions()

  it('synthesizes one stack per region, each named stackName in its own region, cdk-nag clean', () => {
    expect(two.stacks.map((stack) => [stack.node.id, stack.stackName, stack.region])).toEqual([
      ['TokenService', 'TokenService', 'eu-west-1'],
      ['TokenService-us-east-1', 'TokenService', 'us-east-1'],
    ])
    expect(two.waiting).toEqual([])
  })

  it('defines one global table (MREC) in the primary with a replica in the other region, streams with both images', () => {
    const [primary, secondary] = two.templates as [
      Record<string, Resource>,
      Record<string, Resource>,
    ]
    const tables = ofType(primary, 'AWS::DynamoDB::GlobalTable')
    expect(tables).toHaveLength(1)
    const [, table] = tables[0] as [string, Resource]
    expect(table.Properties).toMatchObject({
      TableName: 'TokenService-table',
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      TimeToLiveSpecification: { Enabled: true },
    })
    expect((table.Properties.Replicas as { Region: string }[]).map((r) => r.Region).sort()).toEqual(
      REGIONS,
    )
    expect(table.DeletionPolicy).toBe('Retain')
    expect(ofType(primary, 'AWS::DynamoDB::Table')).toEqual([])
    // The other region's stack names the replica; it defines no table.
    expect(ofType(secondary, 'AWS::DynamoDB::GlobalTable')).toEqual([])
    expect(ofType(secondary, 'AWS::DynamoDB::Table')).toEqual([])
    const [, login] = ofType(secondary, 'AWS::Lambda::Function').find(([id]) =>
      id.startsWith('TokenServiceLoginFunction'),
    ) as [string, Resource]
    const variables = (login.Properties.Environment as { Variables: Record<string, unknown> })
      .Variables
    expect(variables.TABLE_NAME).toBe('TokenService-table')
    // Its security events name their region: only its own forwarder sends them (events once).
    expect(variables.OUTBOX_REGION).toBe('us-east-1')
  })

  it('homes each login’s session in its region, and lets the token, revoke and sessions functions forward to their copies elsewhere, named alike', () => {
    for (const [index, region] of ['eu-west-1', 'us-east-1'].entries()) {
      const resources = two.templates[index] as Record<string, Resource>
      const fnId = (prefix: string) =>
        (
          ofType(resources, 'AWS::Lambda::Function').find(([id]) => id.startsWith(prefix)) as [
            string,
            Resource,
          ]
        )[0]
      const env = (id: string) =>
        (
          (resources[id] as Resource).Properties.Environment as {
            Variables: Record<string, unknown>
          }
        ).Variables
      expect(env(fnId('TokenServiceLoginFunction'))).toMatchObject({
        REGIONS: 'eu-west-1,us-east-1',
        HOME_REGION: region,
      })
      const other = region === 'eu-west-1' ? 'us-east-1' : 'eu-west-1'
      for (const name of ['token', 'revoke', 'sessions']) {
        const id = fnId(`TokenService${name[0]?.toUpperCase()}${name.slice(1)}Function`)
        expect(env(id)).toMatchObject({
          REGIONS: 'eu-west-1,us-east-1',
          HOME_REGION: region,
          HOME_FUNCTION_NAME: `TokenService-${name}`,
          ...(name === 'token' && { FAILOVER: 'relogin' }),
        })
        expect(resources[id]?.Properties.FunctionName).toBe(`TokenService-${name}`)
        // Its role may invoke its copy in the other region, and nothing else of Lambda.
        const role = (
          (resources[id] as Resource).Properties.Role as { 'Fn::GetAtt': [string, string] }
        )['Fn::GetAtt'][0]
        const invokes = ofType(resources, 'AWS::IAM::Policy')
          .filter(([, policy]) => JSON.stringify(policy.Properties.Roles) === `[{"Ref":"${role}"}]`)
          .flatMap(([, policy]) =>
            (
              policy.Properties.PolicyDocument as {
                Statement: { Action: string | string[]; Resource: unknown }[]
              }
            ).Statement.filter((statement) =>
              [statement.Action].flat().some((a) => a.startsWith('lambda:')),
            ),
          )
        expect(invokes, name).toHaveLength(1)
        expect(invokes[0]?.Action).toBe('lambda:InvokeFunction')
        const arn = JSON.stringify(invokes[0]?.Resource)
        expect(arn).toContain(`:lambda:${other}:`)
        expect(arn).toContain(`:function:TokenService-${name}`)
        expect(arn).not.toContain(`:lambda:${region}:`)
      }
    }
  })

  it('adds no fork consumer with failover relogin', () => {
    for (const resources of two.templates) {
      expect(
        ofType(resources, 'AWS::Lambda::Function').filter(([id]) => id.includes('ForkDetection')),
      ).toEqual([])
    }
  })

  it('signs with a multi-Region key in the primary and its replica elsewhere: one key id, so one kid', () => {
    const [primary, secondary] = two.templates as [
      Record<string, Resource>,
      Record<string, Resource>,
    ]
    const [[keyId, key]] = ofType(primary, 'AWS::KMS::Key').filter(([id]) =>
      id.includes('SigningKeyk1'),
    ) as [[string, Resource]]
    expect(key.Properties).toMatchObject({ MultiRegion: true, KeyUsage: 'SIGN_VERIFY' })
    // Creating the replica asks for kms:ReplicateKey on the primary, which IAM may grant only
    // if the key policy delegates it (without it, the ReplicaKey's creation would be denied;
    // not seen in a deploy from this offline machine); and a replica may have to be promoted
    // when the primary's region is lost.
    type KeyStatement = { Sid: string; Action: string[] }
    const admin = (resource: Resource) =>
      (resource.Properties.KeyPolicy as { Statement: KeyStatement[] }).Statement.find(
        (statement) => statement.Sid === 'KeyAdministration',
      )?.Action
    expect(admin(key)).toEqual(
      expect.arrayContaining(['kms:ReplicateKey', 'kms:UpdatePrimaryRegion']),
    )
    const single = synth({}, 'TokenService')
    for (const [, other] of ofType(single.resources, 'AWS::KMS::Key')) {
      if (other.Properties.KeyPolicy) expect(admin(other)).not.toContain('kms:ReplicateKey')
    }
    const replicas = ofType(secondary, 'AWS::KMS::ReplicaKey')
    expect(replicas).toHaveLength(1)
    const [replicaId, replica] = replicas[0] as [string, Resource]
    // The same logical id in both stacks, and the primary's ARN through a cross-region reference.
    expect(replicaId).toBe(keyId)
    expect(JSON.stringify(replica.Properties.PrimaryKeyArn)).toMatch(/ImportedValue|Fn::GetAtt|Ref/)
    expect(replica.Properties.Tags).toEqual([
      { Key: 'token-service:signing-key-of', Value: 'TokenService/TokenService' },
    ])
    expect(replica.DeletionPolicy).toBe('Retain')
    expect(ofType(secondary, 'AWS::KMS::Key').map(([id]) => id)).not.toContain(keyId)
  })
})

describe('what regions does not support yet', () => {
  const attempt = (props: Partial<TokenServiceStackProps>) => () =>
    buildStacks(
      testApp(),
      {
        stackName: 'TokenService',
        props: { clients: testClients, issuer: ISSUER, ...props },
        regions: REGIONS,
      },
      { transitionKeys: [], modes: { k1: props.signing ?? 'kms' }, multiRegionKeys: ['k1'] },
    )

  it('refuses a customer-managed table key: a replica’s key must be a key of its region', () => {
    expect(attempt({ tableEncryption: 'customer-managed' })).toThrow(
      /tableEncryption "customer-managed" is not supported with regions yet/,
    )
  })
})

describe('moving a deployed stack to two regions (docs/operations.md "Moving to several regions")', () => {
  const single = synth({}, 'TokenService')
  const singleIds = Object.keys(single.resources).sort()
  const migrating = (tableMigration: 'detach' | 'import' | 'none', keys: string[] = []) =>
    synthRegions({ tableName: 'TokenService-TableCD117FA1-1A2B3C', tableMigration }, keys)

  it('keeps one region’s table an AWS::DynamoDB::Table under its logical id, and no key multi-Region', () => {
    expect(single.resources[tableId(single.stack)]?.Type).toBe('AWS::DynamoDB::Table')
    expect(ofType(single.resources, 'AWS::DynamoDB::GlobalTable')).toEqual([])
    for (const [, key] of ofType(single.resources, 'AWS::KMS::Key')) {
      expect(key.Properties).not.toHaveProperty('MultiRegion')
    }
    for (const [, fn] of ofType(single.resources, 'AWS::Lambda::Function')) {
      expect(JSON.stringify(fn.Properties.Environment ?? {})).not.toContain('OUTBOX_REGION')
      expect(JSON.stringify(fn.Properties.Environment ?? {})).not.toContain('HOME_REGION')
      expect(fn.Properties).not.toHaveProperty('FunctionName')
    }
  })

  it('step 1 (detach): the primary’s stack is the deployed one without its table, which it names; the other region waits', () => {
    const step = migrating('detach')
    expect(step.stacks).toHaveLength(1)
    expect(step.waiting).toEqual([
      'TokenService-us-east-1: not synthesized while tableMigration is "detach"; docs/operations.md "Moving to several regions"',
    ])
    const [resources] = step.templates as [Record<string, Resource>]
    expect(ofType(resources, 'AWS::DynamoDB::Table')).toEqual([])
    expect(ofType(resources, 'AWS::DynamoDB::GlobalTable')).toEqual([])
    // Nothing else is replaced: every other logical id is the single-region stack's.
    const ids = Object.keys(resources)
    const table = tableId(single.stack)
    expect(singleIds.filter((id) => !ids.includes(id))).toEqual([table])
  })

  it('step 2 (import): the table comes back as an AWS::DynamoDB::GlobalTable under the same logical id, as deployed (one replica, its stream)', () => {
    const step = migrating('import')
    const [resources] = step.templates as [Record<string, Resource>]
    const table = tableId(single.stack)
    // The import adds the table and changes nothing else (CloudFormation refuses other changes).
    const [detached] = migrating('detach').templates as [Record<string, Resource>]
    const { [table]: imported, ...rest } = resources
    expect(imported).toBeDefined()
    expect(rest).toEqual(detached)
    expect(resources[table]?.Type).toBe('AWS::DynamoDB::GlobalTable')
    expect(resources[table]?.Properties).toMatchObject({
      TableName: 'TokenService-TableCD117FA1-1A2B3C',
      StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
      Replicas: [expect.objectContaining({ Region: 'eu-west-1' })],
    })
    expect(resources[table]?.DeletionPolicy).toBe('Retain')
  })

  it('step 3: replicas in every region, once the listed keys are multi-Region; until then the other region waits', () => {
    const waiting = migrating('none', [])
    expect(waiting.stacks).toHaveLength(1)
    expect(waiting.waiting[0]).toMatch(/keys k1 are single-Region \(added before regions\)/)
    const [resources] = waiting.templates as [Record<string, Resource>]
    const table = resources[tableId(single.stack)] as Resource
    expect((table.Properties.Replicas as { Region: string }[]).map((r) => r.Region).sort()).toEqual(
      REGIONS,
    )
    expect(table.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' })
    const done = migrating('none', ['k1'])
    expect(done.stacks.map((stack) => stack.region)).toEqual(REGIONS)
  })
})

describe('multi-Region keys in the ledger', () => {
  const rules = (multiRegion: boolean): KeyChangeRules => ({
    algorithm: 'RS256',
    now: new Date('2026-12-01T00:00:00Z'),
    publishWaitSeconds: 7500,
    retireWaitSeconds: 960,
    multiRegion,
  })

  it('makes a key multi-Region only when it is added with regions set, and keeps each key as it was added', () => {
    const before = checkKeyChange(undefined, [{ id: 'k1', state: 'active' }], rules(false)).next
    const after = checkKeyChange(
      before,
      [
        { id: 'k1', state: 'active' },
        { id: 'k2', state: 'retiring' },
      ],
      rules(true),
    ).next
    expect(after.keys.k1).not.toHaveProperty('multiRegion')
    expect(after.keys.k2).toMatchObject({ multiRegion: true })
    const back = checkKeyChange(
      after,
      [
        { id: 'k2', state: 'retiring' },
        { id: 'k1', state: 'active' },
      ],
      rules(false),
    ).next
    expect(back.keys.k2).toMatchObject({ multiRegion: true })
  })
})

describe('two regions with failover adopt', () => {
  const adopt = synthRegions({}, ['k1'], 'adopt')

  it('is cdk-nag clean, and tells the token functions to adopt', () => {
    expect(adopt.waiting).toEqual([])
    for (const resources of adopt.templates) {
      const token = ofType(resources, 'AWS::Lambda::Function').find(
        ([, fn]) => fn.Properties.FunctionName === 'TokenService-token',
      )
      const environment = (token as [string, Resource])[1].Properties.Environment as {
        Variables: Record<string, unknown>
      }
      expect(environment.Variables.FAILOVER).toBe('adopt')
    }
  })

  it('runs a fork consumer in each region, named alike, on the table stream behind the filters (modified session items with an epoch), invoking its copy elsewhere', () => {
    for (const [index, region] of REGIONS.entries()) {
      const resources = adopt.templates[index] as Record<string, Resource>
      const consumer = ofType(resources, 'AWS::Lambda::Function').find(
        ([, fn]) => fn.Properties.FunctionName === 'TokenService-forks',
      )
      expect(consumer, region).toBeDefined()
      const [id, fn] = consumer as [string, Resource]
      expect(
        (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables,
      ).toMatchObject({
        REGIONS: 'eu-west-1,us-east-1',
        HOME_REGION: region,
        HOME_FUNCTION_NAME: 'TokenService-forks',
        OUTBOX_REGION: region,
      })
      const mappings = ofType(resources, 'AWS::Lambda::EventSourceMapping').filter(([, mapping]) =>
        JSON.stringify(mapping.Properties.FunctionName).includes(id),
      )
      expect(mappings).toHaveLength(1)
      const [, mapping] = mappings[0] as [string, Resource]
      const patterns = (
        mapping.Properties.FilterCriteria as { Filters: { Pattern: string }[] }
      ).Filters.map((filter) => JSON.parse(filter.Pattern))
      expect(patterns).toEqual([
        {
          eventName: ['MODIFY'],
          dynamodb: {
            Keys: { sk: { S: ['SESSION'] } },
            NewImage: { epoch: { N: [{ exists: true }] } },
          },
        },
        {
          eventName: ['MODIFY'],
          dynamodb: {
            Keys: { sk: { S: ['SESSION'] } },
            OldImage: { epoch: { N: [{ exists: true }] } },
          },
        },
      ])
      const role = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
      const statements = ofType(resources, 'AWS::IAM::Policy')
        .filter(([, policy]) => JSON.stringify(policy.Properties.Roles) === `[{"Ref":"${role}"}]`)
        .flatMap(
          ([, policy]) =>
            (
              policy.Properties.PolicyDocument as {
                Statement: { Action: string | string[]; Resource: unknown; Condition?: unknown }[]
              }
            ).Statement,
        )
      const invoke = statements.filter((s) => [s.Action].flat().includes('lambda:InvokeFunction'))
      expect(invoke).toHaveLength(1)
      const other = region === 'eu-west-1' ? 'us-east-1' : 'eu-west-1'
      expect(JSON.stringify(invoke[0]?.Resource)).toContain(`:lambda:${other}:`)
      expect(JSON.stringify(invoke[0]?.Resource)).toContain(':function:TokenService-forks')
      // The table: the sessions only (read, and revoke with the event).
      const onTable = statements.filter((s) =>
        [s.Action].flat().some((a) => a === 'dynamodb:UpdateItem' || a === 'dynamodb:GetItem'),
      )
      expect(JSON.stringify(onTable)).toContain('SESSION#*')
      expect(JSON.stringify(onTable)).not.toContain('USER#*')
    }
  })

  it('alarms on the fork consumer’s dead letters', () => {
    for (const resources of adopt.templates) {
      const alarms = ofType(resources, 'AWS::CloudWatch::Alarm').filter(([id]) =>
        id.includes('ForkDeadLettersAlarm'),
      )
      expect(alarms).toHaveLength(1)
      expect(JSON.stringify(alarms[0]?.[1].Properties.Dimensions)).toContain('ForkDetection')
    }
  })

  it('lets the token function read the region switch (REGION#) and write nothing there', () => {
    const resources = adopt.templates[1] as Record<string, Resource>
    const [, token] = ofType(resources, 'AWS::Lambda::Function').find(
      ([, fn]) => fn.Properties.FunctionName === 'TokenService-token',
    ) as [string, Resource]
    const role = (token.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
    const statements = ofType(resources, 'AWS::IAM::Policy')
      .filter(([, policy]) => JSON.stringify(policy.Properties.Roles) === `[{"Ref":"${role}"}]`)
      .flatMap(
        ([, policy]) =>
          (policy.Properties.PolicyDocument as { Statement: { Action: string | string[] }[] })
            .Statement,
      )
    const region = statements.filter((s) => JSON.stringify(s).includes('REGION#*'))
    expect(region.flatMap((s) => [s.Action].flat())).toEqual(['dynamodb:GetItem'])
  })
})
