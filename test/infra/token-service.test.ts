import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib'
import { Annotations, Match } from 'aws-cdk-lib/assertions'
import type { Construct } from 'constructs'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  loadAuthorizerConfig,
  loadAwsCallConfig,
  loadBackdateSeconds,
  loadBreachCheck,
  loadHomeForwardConfig,
  loadJwksMaxAgeSeconds,
  loadLoginBackoff,
  loadSessionCacheSeconds,
} from '../../functions/config.js'
import {
  type FunctionSpec,
  HTTP_FUNCTIONS,
  KEY_PAIR_METHODS,
  type KmsUse,
  LAMBDA_FUNCTIONS,
  ROUTES,
} from '../../functions/routes.js'
import {
  type LambdaName,
  SETTINGS,
  type SettingName,
  settingsOf,
} from '../../functions/settings.js'
import { DEFAULTS, TIMEOUT_EARLY } from '../../lib/defaults.js'
import { PARTITIONS, STORE_ACTIONS, tableGrants } from '../../lib/table-access.js'
import { accessLogGroupName } from '../../lib/token-service.js'
import type { TokenServiceStackProps } from '../../lib/token-service-stack.js'
import { TokenServiceStack } from '../../lib/token-service-stack.js'
import { type Resource, type Synthesized, synth, testApp, testClients } from './synth.js'

type Statement = {
  Action: string | string[]
  Effect: string
  Resource: unknown
  Condition?: Record<string, Record<string, string>>
}

/** The Sign grant's condition as `grants` renders it: a SHA-256 digest, PKCS #1 v1.5 (RS256). */
const RS256_DIGEST =
  'if StringEquals kms:MessageType=DIGEST, kms:SigningAlgorithm=RSASSA_PKCS1_V1_5_SHA_256'

/**
 * Every grant of every function, as `{ function: { action: [resources] } }`, with the
 * resources named: `table`, `table/index/gsi1`, `key:<id>`, `own-logs`, `*`, pseudo
 * parameters as `<AWS::Region>`; a statement's conditions follow its resource
 * (`key:k1 if StringEquals kms:MessageType=DIGEST, ...`).
 */
function grants({
  stack,
  resources,
  logicalId,
}: Synthesized): Record<string, Record<string, string[]>> {
  const service = stack.service
  const functions = {
    ...service.functions,
    ...(service.tokenAuthorizer && { authorizer: service.tokenAuthorizer.handler }),
    ...(service.securityEvents && { forwarder: service.securityEvents.forwarder }),
  }
  const names = new Map<string, string>()
  for (const [id, key] of Object.entries(service.signingKeys))
    names.set(logicalId(key), `key:${id}`)
  names.set(logicalId(service.table), 'table')
  if (service.securityEvents) {
    names.set(logicalId(service.securityEvents.bus), 'event-bus')
    names.set(logicalId(service.securityEvents.deadLetterQueue), 'dead-letter-queue')
  }
  names.set(logicalId(service.graceKey), 'grace-key')

  const matrix: Record<string, Record<string, string[]>> = {}
  for (const [name, fn] of Object.entries(functions)) {
    const role = logicalId(fn.role)
    const own = logicalId(fn.logGroup)
    const render = (resource: unknown): string => {
      if (resource === '*') return '*'
      const ref = (resource as { Ref?: string }).Ref
      if (ref?.startsWith('AWS::')) return `<${ref}>`
      const getAtt = (resource as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']
      if (getAtt?.[1] === 'Arn') {
        if (getAtt[0] === own) return 'own-logs'
        return names.get(getAtt[0]) ?? `unknown:${getAtt[0]}`
      }
      if (getAtt?.[1] === 'StreamArn') return `${names.get(getAtt[0])}/stream`
      const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join']
      if (join && join[0] === '')
        return join[1].map((part) => (typeof part === 'string' ? part : render(part))).join('')
      return JSON.stringify(resource)
    }
    const actions: Record<string, string[]> = {}
    for (const policy of Object.values(resources)) {
      if (policy.Type !== 'AWS::IAM::Policy') continue
      const roles = (policy.Properties.Roles as { Ref: string }[]).map((ref) => ref.Ref)
      if (!roles.includes(role)) continue
      const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement
      for (const statement of statements) {
        expect(statement.Effect).toBe('Allow')
        const condition = Object.entries(statement.Condition ?? {})
          .map(
            ([operator, values]) =>
              ` if ${operator} ${Object.entries(values)
                .map(([key, value]) => `${key}=${value}`)
                .sort()
                .join(', ')}`,
          )
          .join('')
        for (const action of [statement.Action].flat()) {
          const resources = [statement.Resource].flat().map((r) => `${render(r)}${condition}`)
          const list = [...(actions[action] ?? []), ...resources]
          actions[action] = [...new Set(list)].sort()
        }
      }
    }
    matrix[name] = actions
  }
  return matrix
}

/** The jwks function's grant by tag: the public key of any of this service's signing keys. */
const TAGGED_KEYS =
  'arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/* if StringEquals aws:ResourceTag/token-service:signing-key-of=TestTokenService/TokenService'

const ENVELOPE_ITEMS = 'table if ForAllValues:StringLike dynamodb:LeadingKeys=SIGNINGKEY#*'

const BASE_GRANTS = {
  'logs:CreateLogStream': ['own-logs'],
  'logs:PutLogEvents': ['own-logs'],
  'xray:PutTelemetryRecords': ['*'],
  'xray:PutTraceSegments': ['*'],
}

/**
 * What each KMS use of a row grants, as `grants` renders it, for the test clients (no
 * `dpop_nonce`, so no nonce key: test/infra/dpop.test.ts has the GenerateMac grant).
 */
const KMS_GRANTS: Record<KmsUse, Record<string, string[]>> = {
  sign: { 'kms:Sign': [`key:k1 ${RS256_DIGEST}`], 'kms:GetPublicKey': ['key:k1'] },
  publish: { 'kms:GetPublicKey': [TAGGED_KEYS, 'key:k1'] },
  // No envelope key here: nothing (test/infra/envelope-signing.test.ts has its grants).
  envelopeSign: {},
  // Envelope keys, in every mode (the deploy that adds the first one runs the new jwks under
  // this policy): their items only, and pairs generated under a tagged key.
  envelopePublish: {
    'dynamodb:GetItem': [ENVELOPE_ITEMS],
    'dynamodb:PutItem': [ENVELOPE_ITEMS],
    'kms:GenerateDataKeyPairWithoutPlaintext': [
      `${TAGGED_KEYS.split(' if ')[0]} if StringEquals aws:ResourceTag/token-service:signing-key-of=TestTokenService/TokenService, kms:DataKeyPairSpec=RSA_2048, kms:EncryptionContext:owner=TestTokenService/TokenService`,
    ],
  },
  graceSeal: { 'kms:Decrypt': ['grace-key'], 'kms:GenerateDataKey': ['grace-key'] },
  nonceMac: {},
}

/**
 * The grants a function's row (functions/routes.ts) makes, rendered as `grants` renders
 * the template's: its store methods' DynamoDB actions (on the table, queries on the GSI),
 * its KMS uses, and what every function has.
 */
function expectedGrants(row: FunctionSpec): Record<string, string[]> {
  const expected: Record<string, string[]> = { ...BASE_GRANTS }
  const add = (action: string, resource: string) => {
    expected[action] = [...new Set([...(expected[action] ?? []), resource])].sort()
  }
  // Envelope keys' pairs are granted with the key uses (KMS_GRANTS), not from `store`.
  const store = row.store.filter((method) => !KEY_PAIR_METHODS.includes(method))
  // Each item action on the partitions of the row's methods only (dynamodb:LeadingKeys).
  for (const [action, partitions] of tableGrants(store)) {
    const keys = partitions.map((partition) => PARTITIONS[partition]).join(',')
    add(action, `table if ForAllValues:StringLike dynamodb:LeadingKeys=${keys}`)
  }
  for (const method of store) {
    const { index = [] } = STORE_ACTIONS[method] as { index?: readonly string[] }
    for (const action of index) add(action, 'table/index/gsi1')
  }
  for (const use of row.kms) {
    for (const [action, resources] of Object.entries(KMS_GRANTS[use])) {
      for (const resource of resources) add(action, resource)
    }
  }
  return expected
}

/** The settings a prop tunes: `LOGIN_*`, `AUTHORIZER_*`, `TOKEN_BACKDATE_SECONDS`, `JWKS_MAX_AGE_SECONDS`. */
const TUNABLE = /^(LOGIN_|AUTHORIZER_|TOKEN_BACKDATE_SECONDS$|JWKS_MAX_AGE_SECONDS$)/

/** Every client's audience: what the authorizer accepts unless told otherwise. */
const AUDIENCES = [...new Set(testClients.map((client) => client.audience))].join(',')

/** Each function's environment, by name, with CloudFormation references made plain strings. */
function environments({
  stack,
  resources,
  logicalId,
}: Synthesized): Record<string, Record<string, string>> {
  const functions = {
    ...stack.service.functions,
    ...(stack.service.tokenAuthorizer && { authorizer: stack.service.tokenAuthorizer.handler }),
    ...(stack.service.securityEvents && { forwarder: stack.service.securityEvents.forwarder }),
  }
  return Object.fromEntries(
    Object.entries(functions).map(([name, fn]) => {
      const resource = resources[logicalId(fn.function)]
      if (!resource) throw new Error(`no ${name} function`)
      const variables = (resource.Properties.Environment as { Variables: Record<string, unknown> })
        .Variables
      const plain = Object.entries(variables).map(([key, value]) => [
        key,
        typeof value === 'string' ? value : `resolved-${key.toLowerCase()}`,
      ])
      return [name, Object.fromEntries(plain)]
    }),
  )
}

/**
 * A dependency cycle among the resources (DependsOn, Ref, Fn::GetAtt), as the logical ids
 * around it, or `undefined`: CloudFormation refuses a template with one.
 */
function dependencyCycle(resources: Record<string, Resource>): string[] | undefined {
  const edges = new Map<string, Set<string>>()
  const collect = (value: unknown, into: Set<string>): void => {
    if (Array.isArray(value)) for (const item of value) collect(item, into)
    else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (key === 'Ref' && typeof item === 'string' && item in resources) into.add(item)
        else if (key === 'Fn::GetAtt' && Array.isArray(item)) into.add(String(item[0]))
        else collect(item, into)
      }
    }
  }
  for (const [id, resource] of Object.entries(resources)) {
    const into = new Set<string>(resource.DependsOn ?? [])
    collect(resource.Properties, into)
    edges.set(id, into)
  }
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (id: string, path: string[]): string[] | undefined => {
    if (state.get(id) === 'done') return undefined
    if (state.get(id) === 'visiting') return [...path.slice(path.indexOf(id)), id]
    state.set(id, 'visiting')
    for (const next of edges.get(id) ?? []) {
      const cycle = visit(next, [...path, id])
      if (cycle) return cycle
    }
    state.set(id, 'done')
    return undefined
  }
  for (const id of edges.keys()) {
    const cycle = visit(id, [])
    if (cycle) return cycle
  }
  return undefined
}

const tunables = (environment: Record<string, string>) =>
  Object.fromEntries(Object.entries(environment).filter(([key]) => TUNABLE.test(key)))

/** Every tunable setting as the functions' loaders read it from an environment. */
const tunedOf = (environment: Record<string, string>) => ({
  backdate: loadBackdateSeconds(environment),
  jwksMaxAge: loadJwksMaxAgeSeconds(environment),
  loginBackoff: loadLoginBackoff(environment),
  sessionCache: loadSessionCacheSeconds(environment),
  aws: loadAwsCallConfig(environment),
  breachCheck: loadBreachCheck(environment),
  homeForward: loadHomeForwardConfig({ HOME_FUNCTION_NAME: 'TokenService-token', ...environment }),
})

describe('TokenService with its defaults', () => {
  let synthesized: Synthesized
  let resources: Record<string, Resource>
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type)

  beforeAll(() => {
    synthesized = synth()
    resources = synthesized.resources
  })

  it('keeps one on-demand table with TTL on expires_at, PITR and one GSI, retained and deletion-protected', () => {
    const { template } = synthesized
    template.resourceCountIs('AWS::DynamoDB::Table', 1)
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
        // The password hashes: the AWS-managed key (aws/dynamodb), not an AWS-owned one.
        SSESpecification: { SSEEnabled: true },
        GlobalSecondaryIndexes: [
          {
            IndexName: 'gsi1',
            KeySchema: [
              { AttributeName: 'gsi1pk', KeyType: 'HASH' },
              { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    })
  })

  it('separates each key’s administration from its use in the key policy: no kms:* for anyone', () => {
    const { template } = synthesized
    const keys = Object.values(template.findResources('AWS::KMS::Key')) as Resource[]
    expect(keys.length).toBeGreaterThanOrEqual(2)
    for (const key of keys) {
      const statements = (
        key.Properties.KeyPolicy as {
          Statement: { Sid: string; Action: string[] | string; Principal: unknown }[]
        }
      ).Statement
      expect(statements.map((st) => st.Sid)).toEqual(['KeyAdministration', 'KeyUse'])
      const [admin, use] = statements.map((st) => [st.Action].flat())
      for (const action of [...(admin ?? []), ...(use ?? [])]) expect(action).not.toMatch(/\*/)
      // The administration statement holds no use of a key; the use statement no administration.
      for (const action of ['kms:Sign', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:CreateGrant']) {
        expect(admin).not.toContain(action)
      }
      for (const action of ['kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion', 'kms:DisableKey']) {
        expect(use).not.toContain(action)
      }
      const usage = key.Properties.KeyUsage === 'SIGN_VERIFY'
      expect(use, String(key.Properties.KeyUsage)).toEqual(
        usage ? ['kms:Sign', 'kms:GetPublicKey'] : ['kms:GenerateDataKey', 'kms:Decrypt'],
      )
    }
  })

  it('encrypts the table with a key of its own when asked, in place (same logical id), and lets each table user use it through DynamoDB only', () => {
    const managed = synth({ tableEncryption: 'customer-managed' })
    const { stack, logicalId, template } = managed
    expect(logicalId(stack.service.table)).toBe(logicalId(synthesized.stack.service.table))
    const tableKey = stack.service.table.encryptionKey
    expect(tableKey).toBeDefined()
    const keyArn = { 'Fn::GetAtt': [logicalId(tableKey as never), 'Arn'] }
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn },
    })
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true })
    const matrix = grants(managed)
    for (const name of ['login', 'token', 'revoke', 'sessions', 'password', 'forwarder']) {
      expect(matrix[name]?.['kms:Decrypt'], name).toContainEqual(
        expect.stringMatching(
          /^unknown:TokenServiceTableKey[0-9A-F]{8} if StringEquals kms:ViaService=/,
        ),
      )
    }
    // The jwks function and the plain authorizer never touch the table.
    for (const name of ['jwks', 'me', 'authorizer']) {
      expect(Object.keys(matrix[name] ?? {}), name).not.toContain('kms:Decrypt')
    }
  })

  it('signs with one retained KMS RSA_2048 SIGN_VERIFY key, tagged as the service’s, aliased by its id and as the active key', () => {
    const { template, stack, logicalId } = synthesized
    const signing = template.findResources('AWS::KMS::Key', {
      Properties: { KeyUsage: 'SIGN_VERIFY' },
    })
    expect(Object.keys(signing)).toEqual([logicalId(stack.service.activeKey as Construct)])
    template.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        KeySpec: 'RSA_2048',
        KeyUsage: 'SIGN_VERIFY',
        // What the jwks function's grant by tag names (SIGNING_KEY_TAG).
        Tags: [{ Key: 'token-service:signing-key-of', Value: 'TestTokenService/TokenService' }],
      }),
    })
    const aliases = ofType('AWS::KMS::Alias').map(([, r]) => r.Properties)
    const keyArn = { 'Fn::GetAtt': [logicalId(stack.service.activeKey as Construct), 'Arn'] }
    // The other key wraps the grace seals' data keys: symmetric, rotated yearly, retained.
    template.resourceCountIs('AWS::KMS::Key', 2)
    expect(template.toJSON().Resources[logicalId(stack.service.graceKey)]).toMatchObject({
      DeletionPolicy: 'Retain',
      Properties: { EnableKeyRotation: true },
    })
    expect(
      template.toJSON().Resources[logicalId(stack.service.graceKey)].Properties,
    ).not.toHaveProperty('KeyUsage', 'SIGN_VERIFY')
    expect(aliases).toEqual(
      expect.arrayContaining([
        { AliasName: 'alias/TestTokenService/TokenService/k1', TargetKeyId: keyArn },
        { AliasName: 'alias/TestTokenService/TokenService/active', TargetKeyId: keyArn },
      ]),
    )
    expect(aliases).toHaveLength(2)
  })

  it('runs nine arm64 Node.js 24 functions with X-Ray, sized memory and their own log groups', () => {
    const { stack, logicalId } = synthesized
    const functions = {
      ...stack.service.functions,
      authorizer: stack.service.tokenAuthorizer?.handler,
      forwarder: stack.service.securityEvents?.forwarder,
    }
    expect(ofType('AWS::Lambda::Function')).toHaveLength(9)
    for (const [name, fn] of Object.entries(functions)) {
      if (!fn) throw new Error(`no ${name} function`)
      const props = resources[logicalId(fn.function)]?.Properties
      const spec = LAMBDA_FUNCTIONS[name as LambdaName]
      expect(props).toMatchObject({
        Architectures: ['arm64'],
        Runtime: 'nodejs24.x',
        Handler: 'index.handler',
        MemorySize: spec.memoryMiB,
        Timeout: spec.timeoutSeconds,
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: logicalId(fn.logGroup) } },
      })
    }
    // scrypt N=2^17 is CPU bound: 1769 MB buys one full vCPU.
    for (const name of ['login', 'password'] as const) {
      expect(
        resources[logicalId(stack.service.functions[name].function)]?.Properties.MemorySize,
        name,
      ).toBe(1769)
    }
    for (const [, group] of ofType('AWS::Logs::LogGroup')) {
      expect(group.Properties.RetentionInDays).toBe(90)
      expect(group.DeletionPolicy).toBe('Retain')
    }
  })

  it('gives each function exactly the settings it reads (functions/settings.ts), Powertools settings and explicit SDK timeouts', () => {
    const { stack, logicalId } = synthesized
    const env = environments(synthesized)
    for (const [name, variables] of Object.entries(env)) {
      // RETIRING_KEY_IDS (no retiring key) and JWKS_URI (the issuer's) keep their defaults here;
      // DPOP_NONCE_KEY_ID comes with a nonce client only (test/infra/dpop.test.ts),
      // PASSWORD_BREACH_CHECK_* with passwordBreachCheck only (off by default), and the
      // envelope key's settings, and jwks's TABLE_NAME, with an envelope key only
      // (test/infra/envelope-signing.test.ts), OUTBOX_REGION and the home region's settings
      // with regions only (test/infra/regions.test.ts), and EDGE_ORIGIN_SECRET and
      // REQUEST_ORIGIN with the edge only (test/infra/edge.test.ts).
      const unset = [
        'EDGE_ORIGIN_SECRET',
        'REQUEST_ORIGIN',
        'RETIRING_KEY_IDS',
        'JWKS_URI',
        'DPOP_NONCE_KEY_ID',
        'PASSWORD_BREACH_CHECK_URL',
        'PASSWORD_BREACH_CHECK_TIMEOUT_MS',
        'ENVELOPE_KEY_ID',
        'ENVELOPE_MULTI_REGION_KEY_ID',
        'ENVELOPE_KEY_PAIR_REGION',
        'SIGNING_KEY_OWNER',
        'OUTBOX_REGION',
        'REGIONS',
        'HOME_REGION',
        'FAILOVER',
        'HOME_FUNCTION_NAME',
        'HOME_FORWARD_TIMEOUT_MS',
        ...(name === 'jwks' ? ['TABLE_NAME'] : []),
      ]
      const expected = settingsOf(name as LambdaName).filter((setting) => !unset.includes(setting))
      expect(Object.keys(variables).sort(), name).toEqual(
        [
          ...expected,
          'POWERTOOLS_SERVICE_NAME',
          'POWERTOOLS_METRICS_NAMESPACE',
          'POWERTOOLS_LOG_LEVEL',
          'POWERTOOLS_LOGGER_LOG_EVENT',
          'POWERTOOLS_LOGGER_SAMPLE_RATE',
        ].sort(),
      )
      expect(variables, name).toMatchObject({
        POWERTOOLS_SERVICE_NAME: 'token-service',
        POWERTOOLS_METRICS_NAMESPACE: 'TokenService',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_LOGGER_LOG_EVENT: 'false',
        // Successes log at debug: 1% of the invocations write them.
        POWERTOOLS_LOGGER_SAMPLE_RATE: '0.01',
      })
      if ('AWS_CALL_TIMEOUT_MS' in variables) {
        expect(variables).toMatchObject({ AWS_CALL_TIMEOUT_MS: '1000', AWS_MAX_ATTEMPTS: '2' })
      }
      if ('CLIENTS' in variables) {
        expect(JSON.parse(variables.CLIENTS as string), name).toEqual(testClients)
      }
      // Source maps cost every cold start (docs/benchmarks.md): the bundles have none.
      expect(variables.NODE_OPTIONS, name).toBeUndefined()
    }
    const login = resources[logicalId(stack.service.functions.login.function)]?.Properties
    expect(login?.Environment).toMatchObject({
      Variables: {
        ISSUER: { 'Fn::GetAtt': [logicalId(stack.service.api), 'ApiEndpoint'] },
        SIGNING_KEY_ID: { 'Fn::GetAtt': [logicalId(stack.service.activeKey as Construct), 'Arn'] },
        SIGNING_ALG: 'RS256',
        TABLE_NAME: { Ref: logicalId(stack.service.table) },
      },
    })
    // The authorizer verifies with the JWKS: no clients, no table, no key in its environment.
    expect(env.authorizer).toMatchObject({ AUTHORIZER_AUDIENCES: AUDIENCES })
    expect(Object.keys(env.me ?? {}).filter((key) => !key.startsWith('POWERTOOLS_'))).toEqual([
      'ISSUER',
      'CLIENTS',
    ])
  })

  it('sets each tunable setting, at config.ts’s default, only on the functions that read it', () => {
    const env = environments(synthesized)
    expect(Object.fromEntries(Object.entries(env).map(([name, e]) => [name, tunables(e)]))).toEqual(
      {
        login: {
          TOKEN_BACKDATE_SECONDS: '5',
          LOGIN_FREE_FAILURES: '3',
          LOGIN_BACKOFF_BASE_SECONDS: '1',
          LOGIN_BACKOFF_MAX_SECONDS: '900',
          LOGIN_FAILURE_WINDOW_SECONDS: '86400',
        },
        token: { TOKEN_BACKDATE_SECONDS: '5' },
        revoke: {},
        jwks: { JWKS_MAX_AGE_SECONDS: '300' },
        sessions: {},
        password: {
          LOGIN_FREE_FAILURES: '3',
          LOGIN_BACKOFF_BASE_SECONDS: '1',
          LOGIN_BACKOFF_MAX_SECONDS: '900',
          LOGIN_FAILURE_WINDOW_SECONDS: '86400',
        },
        me: {},
        authorizer: {
          AUTHORIZER_AUDIENCES: AUDIENCES,
          AUTHORIZER_SKEW_SECONDS: '30',
          AUTHORIZER_MAX_TOKEN_BYTES: '4096',
          // The longest client TTL (900 s) plus the backdate (5 s): exp - iat of the longest token.
          AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: '905',
          // API Gateway's cache of its answers: the authorizer allows up to exp + skew - this.
          AUTHORIZER_CACHE_SECONDS: '30',
        },
        forwarder: {},
      },
    )
    // The values set are exactly what each function would assume with none set.
    for (const [name, environment] of Object.entries(env)) {
      const untuned = Object.fromEntries(
        Object.entries(environment).filter(([key]) => !TUNABLE.test(key)),
      )
      expect(tunedOf(environment), name).toEqual(tunedOf(untuned))
    }
  })

  it('chains the timeouts: SDK call timeout x attempts < Lambda timeout < API Gateway integration timeout', () => {
    const { logicalId, stack } = synthesized
    const integrationTimeouts = new Map<string, number>()
    for (const [id, integration] of ofType('AWS::ApiGatewayV2::Integration')) {
      const target = (integration.Properties.IntegrationUri as { 'Fn::GetAtt': [string] })[
        'Fn::GetAtt'
      ][0]
      integrationTimeouts.set(target, integration.Properties.TimeoutInMillis as number)
      expect(integration.Properties.TimeoutInMillis, id).toBeLessThanOrEqual(30_000)
    }
    for (const [id, fn] of ofType('AWS::Lambda::Function')) {
      const env = (fn.Properties.Environment as { Variables: Record<string, string> }).Variables
      // `me` makes no AWS call at all.
      if (env.AWS_CALL_TIMEOUT_MS === undefined) {
        expect(env.ISSUER, id).toBeDefined()
        continue
      }
      const sdkBudget = Number(env.AWS_CALL_TIMEOUT_MS) * Number(env.AWS_MAX_ATTEMPTS)
      const lambdaMs = (fn.Properties.Timeout as number) * 1000
      // Middy answers 503 250 ms before Lambda's timeout: one whole AWS call still fits before it.
      expect(sdkBudget, id).toBeLessThan(lambdaMs - TIMEOUT_EARLY.toMilliseconds())
      const integrationMs =
        integrationTimeouts.get(id) ?? DEFAULTS.integrationTimeout.toMilliseconds()
      expect(lambdaMs, id).toBeLessThan(integrationMs)
    }
    // Every function but the authorizer and the forwarder (the table's stream invokes it)
    // sits behind an integration.
    const authorizer = stack.service.tokenAuthorizer?.handler.function
    const forwarder = stack.service.securityEvents?.forwarder.function
    expect([...integrationTimeouts.keys()].sort()).toEqual(
      ofType('AWS::Lambda::Function')
        .map(([id]) => id)
        .filter((id) => ![authorizer, forwarder].some((fn) => fn && id === logicalId(fn)))
        .sort(),
    )
  })

  it('reaches only the items each function needs: token reads users but never writes one, login updates only where the failed-logins record lives and puts into a user partition only (a session pointer), no other function but password and sessions writes a user', () => {
    const matrix = grants(synthesized)
    const WRITES = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']
    /** The partitions an action may reach, from its rendered condition. */
    const partitionsOf = (name: string, action: string) =>
      (matrix[name]?.[action] ?? []).flatMap((resource) => {
        const keys = / if ForAllValues:StringLike dynamodb:LeadingKeys=(.*)$/.exec(resource)?.[1]
        // A table grant without the condition would reach every item.
        expect(keys, `${name} ${action} ${resource}`).toBeDefined()
        return keys?.split(',') ?? []
      })
    const writes = (name: string) =>
      [...new Set(WRITES.flatMap((action) => partitionsOf(name, action)))].sort()
    expect(partitionsOf('token', 'dynamodb:BatchGetItem')).toContain('USER#*')
    // The grace keys' directory: GRACEKEY# (no envelope key in this stack: no SIGNINGKEY#).
    expect(writes('token')).toEqual(['DPOP#*', 'EVENT#*', 'GRACEKEY#*', 'SESSION#*'])
    expect(writes('login')).toEqual(['DPOP#*', 'EVENT#*', 'SESSION#*', 'USER#*', 'USERNAME#*'])
    // The failed-logins record, and the session it revokes when signing fails: never a user.
    expect(partitionsOf('login', 'dynamodb:UpdateItem')).toEqual(['SESSION#*', 'USERNAME#*'])
    // A new session's pointer lives in its user's partition (issue 17): login puts there,
    // and IAM tells partitions apart, not items. It never updates or deletes in one.
    expect(partitionsOf('login', 'dynamodb:PutItem')).toContain('USER#*')
    expect(partitionsOf('login', 'dynamodb:DeleteItem')).toEqual([])
    expect(writes('revoke')).toEqual(['EVENT#*', 'SESSION#*'])
    for (const name of Object.keys(matrix)) {
      const userWriter = ['password', 'sessions', 'login'].includes(name)
      expect(writes(name).includes('USER#*'), name).toBe(userWriter)
    }
  })

  it('grants each function exactly what its row in functions/routes.ts lists: Sign only to login and token on the active key, for a digest, no wildcard but X-Ray and the tagged keys', () => {
    const matrix = grants(synthesized)
    const rows: Record<string, FunctionSpec> = {
      ...HTTP_FUNCTIONS,
      authorizer: LAMBDA_FUNCTIONS.authorizer,
    }
    // Whatever the rows say, these hold: only login and token sign, only token seals, and
    // me and the authorizer touch neither the table nor a key.
    const holders = (action: string) =>
      Object.keys(matrix).filter((name) => matrix[name]?.[action] !== undefined)
    expect(holders('kms:Sign')).toEqual(['login', 'token'])
    expect(holders('kms:GenerateDataKey')).toEqual(['token'])
    expect(holders('kms:Decrypt')).toEqual(['token'])
    expect(matrix.me).toEqual(BASE_GRANTS)
    expect(matrix.authorizer).toEqual(BASE_GRANTS)
    expect(matrix).toEqual({
      ...Object.fromEntries(Object.entries(rows).map(([name, row]) => [name, expectedGrants(row)])),
      // The stream it is invoked from (Lambda's poller uses its role), PutEvents on the one
      // bus, and the dead-letter queue of its event source mapping. No table access.
      forwarder: {
        ...BASE_GRANTS,
        'dynamodb:DescribeStream': ['table/stream'],
        'dynamodb:GetRecords': ['table/stream'],
        'dynamodb:GetShardIterator': ['table/stream'],
        'dynamodb:ListStreams': ['table/stream'],
        'events:PutEvents': ['event-bus'],
        'sqs:GetQueueAttributes': ['dead-letter-queue'],
        'sqs:GetQueueUrl': ['dead-letter-queue'],
        'sqs:SendMessage': ['dead-letter-queue'],
      },
    })
  })

  it('has no wildcard action and no "*" resource except the X-Ray statement, which AWS requires, and reads keys by wildcard only with the service’s tag', () => {
    for (const [id, policy] of ofType('AWS::IAM::Policy')) {
      const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement
      for (const statement of statements) {
        const actions = [statement.Action].flat()
        for (const action of actions) expect(action, id).not.toContain('*')
        expect(JSON.stringify(statement.Resource), id).not.toContain('/index/*')
        if ([statement.Resource].flat().includes('*')) {
          // xray:PutTraceSegments and PutTelemetryRecords support no resource-level permissions.
          expect(actions.sort(), id).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments'])
        }
        if (JSON.stringify(statement.Resource).includes('key/*')) {
          // Public keys, and key pairs generated under a key of this service (never in plain).
          expect(actions, id).toHaveLength(1)
          expect(['kms:GetPublicKey', 'kms:GenerateDataKeyPairWithoutPlaintext']).toContain(
            actions[0],
          )
          expect(statement.Condition?.StringEquals, id).toMatchObject({
            'aws:ResourceTag/token-service:signing-key-of': 'TestTokenService/TokenService',
          })
        }
      }
    }
    // Functions use their own roles: no AWS managed policy (AWSLambdaBasicExecutionRole logs anywhere).
    for (const [, role] of ofType('AWS::IAM::Role'))
      expect(role.Properties.ManagedPolicyArns).toBeUndefined()
  })

  it('serves every route of docs/design.md, bearer routes behind the Lambda authorizer', () => {
    const { stack, logicalId } = synthesized
    const targets = new Map<string, string>()
    for (const [id, integration] of ofType('AWS::ApiGatewayV2::Integration')) {
      const fn = (integration.Properties.IntegrationUri as { 'Fn::GetAtt': [string] })[
        'Fn::GetAtt'
      ][0]
      const name = Object.entries(stack.service.functions).find(
        ([, f]) => logicalId(f.function) === fn,
      )?.[0]
      targets.set(id, name ?? fn)
    }
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, route]) => {
      const target = (route.Properties.Target as { 'Fn::Join': [string, unknown[]] })[
        'Fn::Join'
      ][1][1] as {
        Ref: string
      }
      return `${route.Properties.RouteKey} -> ${targets.get(target.Ref)} (${route.Properties.AuthorizationType})`
    })
    expect(routes.sort()).toEqual(
      [
        'POST /login -> login (NONE)',
        'POST /token -> token (NONE)',
        'POST /revoke -> revoke (NONE)',
        'GET /.well-known/jwks.json -> jwks (NONE)',
        'GET /.well-known/openid-configuration -> jwks (NONE)',
        'GET /.well-known/oauth-authorization-server -> jwks (NONE)',
        'GET /sessions -> sessions (CUSTOM)',
        'DELETE /sessions -> sessions (CUSTOM)',
        'DELETE /sessions/{sid} -> sessions (CUSTOM)',
        'GET /me -> me (CUSTOM)',
        'POST /me/password -> password (CUSTOM)',
      ].sort(),
    )
  })

  it('authorizes with the Lambda authorizer: payload 2.0, simple responses, Authorization header, cached no longer than a token lives', () => {
    const { template } = synthesized
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 1)
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      AuthorizerPayloadFormatVersion: '2.0',
      EnableSimpleResponses: true,
      IdentitySource: ['$request.header.Authorization'],
      // The clock skew (30 s), so that a cached Allow never outlives exp plus the skew.
      AuthorizerResultTtlInSeconds: 30,
    })
  })

  it('throttles the stage above the busy-hour load of a million users, gives /token, /login and /me/password limits of their own, allows CORS from the clients’ origins only, and logs access without any header or token', () => {
    const { template } = synthesized
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: {
        AllowCredentials: true,
        AllowOrigins: ['https://app.example.com'],
        AllowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
        AllowHeaders: ['authorization', 'content-type', 'dpop'],
        MaxAge: 600,
      },
    })
    const stages = ofType('AWS::ApiGatewayV2::Stage')
    expect(stages).toHaveLength(1)
    const [, stage] = stages[0] as [string, Resource]
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      // About 1,150 refreshes and 35 logins a second, times 2.5; burst at the account's 5,000.
      DefaultRouteSettings: { ThrottlingRateLimit: 3000, ThrottlingBurstLimit: 5000 },
    })
    // No route shares a small limit that one client could use up for everyone.
    expect(stage.Properties.RouteSettings).toEqual({
      'POST /token': { ThrottlingRateLimit: 2500, ThrottlingBurstLimit: 5000 },
      'POST /login': { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 },
      'POST /me/password': { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    })
    // The route settings name the routes: the stage must come after them.
    for (const key of ['POST /token', 'POST /login', 'POST /me/password']) {
      const route = ofType('AWS::ApiGatewayV2::Route').find(
        ([, r]) => r.Properties.RouteKey === key,
      )?.[0]
      expect(route, key).toBeDefined()
      expect(stage.DependsOn, key).toContain(route)
    }
    const format = JSON.parse(
      (stage.Properties.AccessLogSettings as { Format: string }).Format,
    ) as Record<string, string>
    expect(format.requestId).toBe('$context.requestId')
    // Joins an access-log line to its function's lines (`function_request_id`).
    expect(format.integrationRequestId).toBe('$context.integration.requestId')
    for (const variable of Object.values(format)) {
      expect(variable).toMatch(/^\$context\.[A-Za-z.]+$/)
      expect(variable).not.toMatch(/header|querystring|userAgent|body|authorizer\.claims/i)
    }
  })

  it('logs API access to a group under /aws/vendedlogs/, named after the stack and its unique id', () => {
    const { stack, logicalId } = synthesized
    const logGroupId = logicalId(stack.service.accessLogs)
    expect(resources[logGroupId]?.Properties.LogGroupName).toEqual({
      'Fn::Join': [
        '',
        [
          '/aws/vendedlogs/TestTokenService/',
          // The UUID at the end of the stack id: unique to this stack, stable for its life.
          { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] },
          '/TokenService/access-logs',
        ],
      ],
    })
    const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0] as [string, Resource]
    expect(stage.Properties.AccessLogSettings).toMatchObject({
      DestinationArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
    })
    // The longest stack name (128) fits in CloudWatch Logs' 512 characters; a bad id does not.
    expect(() => accessLogGroupName('S'.repeat(128), 'TokenService')).not.toThrow()
    expect(() => accessLogGroupName('S'.repeat(128), 'T'.repeat(330))).toThrow(/at most 512/)
    expect(() => accessLogGroupName('Prod', 'Token Service')).toThrow(/not a CloudWatch Logs name/)
  })

  it('alarms on rates, not counts: reuses per 1,000 refreshes, 5xx, 429, Lambda, KMS and DynamoDB throttles per 1,000 requests, failed logins against their own band, and each route’s p99', () => {
    const { stack, logicalId } = synthesized
    const alarms = stack.service.monitoring.alarms
    expect(Object.keys(alarms).sort()).toEqual(
      [
        'dpopTheftSignals',
        'dynamodbThrottles',
        'kmsQuota',
        'kmsThrottles',
        'lambdaErrors',
        'lambdaThrottles',
        'reuseDetections',
        'securityEventDeadLetters',
        'securityEventsLag',
        'serverErrors',
        'throttledRequests',
        'failedLogins',
        ...[
          'Login',
          'Token',
          'Revoke',
          'Jwks',
          'Sessions',
          'Password',
          'Me',
          'Authorizer',
          'Forwarder',
        ].map((fn) => `nearTimeout${fn}`),
        ...ROUTES.map(
          (route) =>
            `latency${`${route.method} ${route.path}`
              .replace(/[^A-Za-z0-9]+/g, ' ')
              .trim()
              .split(' ')
              .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
              .join('')}`,
        ),
      ].sort(),
    )
    const props = (name: keyof typeof alarms) =>
      resources[logicalId(alarms[name])]?.Properties ?? {}
    const metricsOf = (name: keyof typeof alarms) =>
      JSON.stringify((props(name).Metrics as unknown[]) ?? [])
    // In a quiet period the reuse rate is taken of 1,000 refreshes: one reuse still pages.
    expect(props('reuseDetections')).toMatchObject({
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    })
    expect(metricsOf('reuseDetections')).toContain(
      '1000 * reuse / IF(refreshes > 1000, refreshes, 1000)',
    )
    expect(metricsOf('reuseDetections')).toContain(
      '"Metric":{"Dimensions":[{"Name":"service","Value":"token-service"}],"MetricName":"ReuseDetections"',
    )
    expect(metricsOf('reuseDetections')).toContain('"MetricName":"Refreshes"')
    // Shares of the requests, two periods running: at volume one bad period is noise.
    for (const [name, metric, threshold] of [
      ['serverErrors', '"MetricName":"5xx"', 10],
      ['throttledRequests', '"MetricName":"TooManyRequests"', 50],
      ['dynamodbThrottles', '"MetricName":"ThrottledRequests"', 10],
    ] as const) {
      expect(metricsOf(name), name).toMatch(/\/ IF\(requests > 1000, requests, 1000\)/)
      expect(metricsOf(name), name).toContain(metric)
      expect(metricsOf(name), name).toContain('"MetricName":"Count"')
      expect(props(name), name).toMatchObject({ Threshold: threshold, EvaluationPeriods: 2 })
    }
    for (const name of ['lambdaErrors', 'lambdaThrottles', 'kmsThrottles'] as const) {
      expect(metricsOf(name), name).toMatch(/^\[\{"Expression":"1000 \* .* \/ IF\(requests > 1000/)
      expect(props(name).Threshold, name).toBe(1)
    }
    // Like reuse detections: any DPoP refusal that signals theft, of either kind.
    expect(props('dpopTheftSignals')).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    })
    expect(metricsOf('dpopTheftSignals')).toContain('mismatches + replays')
    for (const metric of ['DpopKeyMismatches', 'DpopReplays']) {
      expect(metricsOf('dpopTheftSignals')).toContain(`"MetricName":"${metric}"`)
    }
    expect(metricsOf('dpopTheftSignals')).toContain('"Namespace":"TokenService"')
    expect(metricsOf('lambdaErrors').match(/"MetricName":"Errors"/g)).toHaveLength(9)
    expect(metricsOf('lambdaThrottles').match(/"MetricName":"Throttles"/g)).toHaveLength(9)
    // Failed logins against their own history: credential stuffing, whatever the volume.
    expect(props('failedLogins')).toMatchObject({
      ComparisonOperator: 'GreaterThanUpperThreshold',
      ThresholdMetricId: 'expr_1',
      EvaluationPeriods: 2,
    })
    expect(metricsOf('failedLogins')).toContain('ANOMALY_DETECTION_BAND(m0, 3)')
    expect(metricsOf('failedLogins')).toContain('"MetricName":"LoginFailures"')
    // Each route's p99, from the per-route metrics the stage turns on.
    const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0] as [string, Resource]
    expect(stage.Properties.DefaultRouteSettings).toMatchObject({ DetailedMetricsEnabled: true })
    const latency = Object.entries(alarms).filter(([name]) => name.startsWith('latency'))
    expect(latency).toHaveLength(ROUTES.length)
    for (const route of ROUTES) {
      const dimensions = `{"Name":"Method","Value":"${route.method}"},{"Name":"Resource","Value":"${route.path}"},{"Name":"Stage","Value":"$default"}`
      const found = latency.find(([name]) =>
        metricsOf(name as keyof typeof alarms).includes(dimensions),
      )
      expect(found, `${route.method} ${route.path}`).toBeDefined()
      const name = found?.[0] as keyof typeof alarms
      expect(metricsOf(name)).toContain(
        '"MetricName":"Latency","Namespace":"AWS/ApiGateway"},"Period":300,"Stat":"p99"',
      )
      expect(props(name).Threshold).toBe(
        ['/login', '/me/password'].includes(route.path) ? 3000 : 1000,
      )
    }
    const events = stack.service.securityEvents
    expect(props('securityEventDeadLetters')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [logicalId(events?.deadLetterQueue as never), 'QueueName'] },
        },
      ],
      Statistic: 'Maximum',
      Threshold: 1,
    })
    expect(props('securityEventsLag').Threshold).toBe(600_000)
    expect(props('securityEventsLag').Metrics).toMatchObject([
      {
        MetricStat: {
          Metric: {
            Namespace: 'AWS/Lambda',
            MetricName: 'IteratorAge',
            Dimensions: [
              {
                Name: 'FunctionName',
                Value: { Ref: logicalId(events?.forwarder.function as never) },
              },
            ],
          },
          Stat: 'Maximum',
        },
      },
    ])
    expect(metricsOf('kmsThrottles')).toContain(
      '"Metric":{"MetricName":"KmsThrottles","Namespace":"TokenService"}',
    )
    expect(metricsOf('kmsQuota')).toContain('SERVICE_QUOTA(usage)')
    expect(metricsOf('kmsQuota')).toContain('CryptographicOperationsRsa')
    expect(
      metricsOf('dynamodbThrottles').match(/"MetricName":"ThrottledRequests"/g)?.length,
    ).toBeGreaterThanOrEqual(5)
    for (const name of Object.keys(alarms) as (keyof typeof alarms)[]) {
      expect(props(name).AlarmActions, name).toBeUndefined()
    }
  })

  it('counts throttled KMS calls from the logs of the HTTP functions that call KMS', () => {
    const { stack, logicalId } = synthesized
    const filters = ofType('AWS::Logs::MetricFilter')
      .map(([, f]) => f.Properties)
      .filter((f) => JSON.stringify(f.MetricTransformations).includes('KmsThrottles'))
    const groups = filters.map((f) => (f.LogGroupName as { Ref: string }).Ref).sort()
    const { login, token, jwks } = stack.service.functions
    expect(groups).toEqual([login, token, jwks].map((fn) => logicalId(fn.logGroup)).sort())
    for (const filter of filters) {
      expect(filter).toMatchObject({
        FilterPattern: '{ $.cause = "ThrottlingException" && $.detail = "kms*" }',
        MetricTransformations: [
          { MetricNamespace: 'TokenService', MetricName: 'KmsThrottles', MetricValue: '1' },
        ],
      })
    }
  })

  it('has a dashboard of logins, throttled logins, refreshes, grace hits, reuse detections, revocations, latency percentiles and errors', () => {
    const [[, dashboard] = []] = ofType('AWS::CloudWatch::Dashboard')
    const body = JSON.stringify(dashboard?.Properties.DashboardBody)
    for (const metric of [
      'Logins',
      'LoginFailures',
      'LoginThrottled',
      'Refreshes',
      'GraceReplays',
      'ReuseDetections',
      'Revocations',
      'DpopKeyMismatches',
      'DpopReplays',
      'Latency',
      'Duration',
      '4xx',
      '5xx',
      'Errors',
      'Throttles',
      'KmsThrottles',
      'ThrottledRequests',
    ]) {
      expect(body).toContain(`\\"${metric}\\"`)
    }
    for (const stat of ['p50', 'p90', 'p99']) expect(body).toContain(`\\"stat\\":\\"${stat}\\"`)
  })

  it('feeds a bus of its own from the table stream: inserted outbox items only, failures resent from the first unsent record, then a dead-letter queue', () => {
    const { stack, logicalId } = synthesized
    const events = stack.service.securityEvents
    if (!events) throw new Error('no security events')
    expect(resources[logicalId(stack.service.table)]?.Properties.StreamSpecification).toEqual({
      StreamViewType: 'NEW_IMAGE',
    })
    expect(ofType('AWS::Events::EventBus')).toHaveLength(1)
    const [[, mapping] = []] = ofType('AWS::Lambda::EventSourceMapping')
    expect(ofType('AWS::Lambda::EventSourceMapping')).toHaveLength(1)
    expect(mapping?.Properties).toMatchObject({
      FunctionName: { Ref: logicalId(events.forwarder.function) },
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack.service.table), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: -1,
      MaximumRecordAgeInSeconds: 6 * 3600,
      DestinationConfig: {
        OnFailure: {
          Destination: { 'Fn::GetAtt': [logicalId(events.deadLetterQueue), 'Arn'] },
        },
      },
      FilterCriteria: {
        Filters: [
          { Pattern: '{"eventName":["INSERT"],"dynamodb":{"Keys":{"sk":{"S":["EVENT"]}}}}' },
        ],
      },
    })
    expect(resources[logicalId(events.deadLetterQueue)]?.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 86_400,
    })
    // The forwarder reads where to send, and the events' source: nothing else.
    const forwarder = resources[logicalId(events.forwarder.function)]?.Properties
    expect(forwarder?.Environment).toMatchObject({
      Variables: {
        EVENT_BUS_NAME: { Ref: logicalId(events.bus) },
        ISSUER: { 'Fn::GetAtt': [logicalId(stack.service.api), 'ApiEndpoint'] },
      },
    })
  })

  it('with securityEvents.bus off, has no stream, bus, forwarder or queue (the outbox items are still written)', () => {
    const { stack, resources: off, template } = synth({ securityEvents: { bus: false } })
    expect(stack.service.securityEvents).toBeUndefined()
    const table = Object.values(off).find((r) => r.Type === 'AWS::DynamoDB::Table')
    expect(table?.Properties.StreamSpecification).toBeUndefined()
    for (const type of [
      'AWS::Events::EventBus',
      'AWS::Lambda::EventSourceMapping',
      'AWS::SQS::Queue',
    ]) {
      template.resourceCountIs(type, 0)
    }
    template.resourceCountIs('AWS::Lambda::Function', 8)
    expect(Object.keys(stack.service.monitoring.alarms)).not.toContain('securityEventDeadLetters')
  })

  it('outputs the API URL, issuer, JWKS URL, table name, the active key, and the security events’ bus and dead-letter queue', () => {
    const outputs = synthesized.template.toJSON().Outputs as Record<string, { Value: unknown }>
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'ActiveSigningKeyAlias',
        'ActiveSigningKeyArn',
        'ApiUrl',
        'DashboardName',
        'DiscoveryUrl',
        'Issuer',
        'JwksUrl',
        'SecurityEventBusName',
        'SecurityEventDeadLetterQueueUrl',
        'TableName',
      ].sort(),
    )
    expect(JSON.stringify(outputs.JwksUrl?.Value)).toContain('/.well-known/jwks.json')
    expect(outputs.ActiveSigningKeyAlias?.Value).toBe('alias/TestTokenService/TokenService/active')
  })

  it('keeps the same resources (snapshot of logical ids and types, no asset hashes)', () => {
    const list = Object.entries(resources)
      .map(([id, resource]) => `${resource.Type} ${id}`)
      .sort()
    expect(list).toMatchSnapshot()
  })
})

describe('TokenService options', () => {
  it('uses an ECC_NIST_P256 key for ES256, signed as ECDSA_SHA_256, and DESTROY drops the retention and the deletion protection', () => {
    const synthesized = synth({
      algorithm: 'ES256',
      removalPolicy: RemovalPolicy.DESTROY,
      issuer: 'https://auth.example.com',
    })
    const { template } = synthesized
    template.hasResourceProperties('AWS::KMS::Key', {
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
    })
    const matrix = grants(synthesized)
    for (const name of ['login', 'token']) {
      expect(matrix[name]?.['kms:Sign'], name).toEqual([
        'key:k1 if StringEquals kms:MessageType=DIGEST, kms:SigningAlgorithm=ECDSA_SHA_256',
      ])
    }
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' })
    template.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false })
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' })
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ ISSUER: 'https://auth.example.com' }) },
    })
    expect(
      Object.values(template.findResources('AWS::Lambda::Function'))
        .map((fn) => fn.Properties.Environment.Variables.SIGNING_ALG)
        .filter(Boolean),
    ).toEqual(['ES256', 'ES256', 'ES256'])
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({
              Dimensions: Match.arrayWith([
                { Name: 'Resource', Value: 'CryptographicOperationsEcc' },
              ]),
            }),
          }),
        }),
      ]),
    })
  })

  it('refuses, at synth, the native JWT authorizer with ES256, which API Gateway rejects', () => {
    expect(() => synth({ algorithm: 'ES256', authorizer: 'jwt' })).toThrow(
      /native HTTP API JWT authorizer accepts RS256 tokens only/,
    )
  })

  it('offers the native JWT authorizer: issuer = our issuer, audiences = the clients’, no authorizer function', () => {
    const { template, stack, logicalId, resources } = synth({ authorizer: 'jwt' })
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: {
        Issuer: { 'Fn::GetAtt': [logicalId(stack.service.api), 'ApiEndpoint'] },
        Audience: ['https://api.example.com'],
      },
    })
    expect(stack.service.tokenAuthorizer).toBeUndefined()
    // The seven HTTP functions and the forwarder.
    template.resourceCountIs('AWS::Lambda::Function', 8)
    const bearer = Object.values(resources).filter(
      (r) => r.Type === 'AWS::ApiGatewayV2::Route' && r.Properties.AuthorizationType !== 'NONE',
    )
    expect(
      bearer.map((r) => [r.Properties.RouteKey, r.Properties.AuthorizationType]).sort(),
    ).toEqual(
      [
        ['DELETE /sessions', 'JWT'],
        ['DELETE /sessions/{sid}', 'JWT'],
        ['GET /me', 'JWT'],
        ['GET /sessions', 'JWT'],
        ['POST /me/password', 'JWT'],
      ].sort(),
    )
  })

  it('creates the native JWT authorizer only once its issuer’s discovery is served: after the discovery routes, their integration and permissions, the jwks function and the stage', () => {
    const { stack, logicalId, resources } = synth({ authorizer: 'jwt' })
    const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type)
    const [[authorizerId, authorizer]] = ofType('AWS::ApiGatewayV2::Authorizer') as [
      [string, Resource],
    ]
    const jwks = stack.service.functions.jwks
    const jwksFunction = logicalId(jwks.function)
    const discoveryPaths = [
      '/.well-known/jwks.json',
      '/.well-known/openid-configuration',
      '/.well-known/oauth-authorization-server',
    ]
    const discoveryRoutes = ofType('AWS::ApiGatewayV2::Route')
      .filter(([, r]) => discoveryPaths.some((path) => r.Properties.RouteKey === `GET ${path}`))
      .map(([id]) => id)
    expect(discoveryRoutes).toHaveLength(3)
    const integration = ofType('AWS::ApiGatewayV2::Integration').find(
      ([, r]) =>
        (r.Properties.IntegrationUri as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0] ===
        jwksFunction,
    )?.[0]
    // API Gateway may invoke the jwks function on each discovery route: one permission per route.
    const permissions = ofType('AWS::Lambda::Permission')
      .filter(
        ([, r]) =>
          JSON.stringify(r.Properties.FunctionName).includes(jwksFunction) &&
          discoveryPaths.some((path) => JSON.stringify(r.Properties.SourceArn).includes(path)),
      )
      .map(([id]) => id)
    expect(permissions).toHaveLength(3)
    const [[stageId, stage]] = ofType('AWS::ApiGatewayV2::Stage') as [[string, Resource]]
    expect(authorizer.DependsOn).toEqual(
      expect.arrayContaining([
        ...discoveryRoutes,
        integration,
        ...permissions,
        jwksFunction,
        logicalId(jwks.role.node.findChild('DefaultPolicy')),
        stageId,
      ]),
    )
    // The stage's first deployment has the discovery routes; the bearer routes come after the
    // authorizer, and nothing the authorizer waits for waits for them.
    expect(stage.DependsOn).toEqual(expect.arrayContaining(discoveryRoutes))
    const bearer = ofType('AWS::ApiGatewayV2::Route').filter(
      ([, r]) => r.Properties.AuthorizationType === 'JWT',
    )
    expect(bearer).toHaveLength(ROUTES.filter((route) => route.auth === 'bearer').length)
    for (const [, route] of bearer)
      expect(route.Properties.AuthorizerId).toEqual({ Ref: authorizerId })
    expect(dependencyCycle(resources)).toBeUndefined()
    const loop = { Type: 'T', Properties: {} }
    expect(
      dependencyCycle({ a: { ...loop, DependsOn: ['b'] }, b: { ...loop, DependsOn: ['a'] } }),
    ).toEqual(['a', 'b', 'a'])
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('authorizer "jwt"'))
  })

  it('with a custom domain, creates the JWT authorizer after the domain, its API mapping and DNS records, and warns when the DNS is not the stack’s', () => {
    const domain = {
      domainName: 'auth.example.com',
      certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
    }
    const zoned = synth({
      authorizer: 'jwt',
      domain: { ...domain, hostedZoneId: 'Z0123456789', hostedZoneName: 'example.com' },
    })
    const idsOf = (type: string) =>
      Object.entries(zoned.resources)
        .filter(([, r]) => r.Type === type)
        .map(([id]) => id)
    const [authorizer] = idsOf('AWS::ApiGatewayV2::Authorizer')
    const waitsFor = [
      ...idsOf('AWS::ApiGatewayV2::DomainName'),
      ...idsOf('AWS::ApiGatewayV2::ApiMapping'),
      ...idsOf('AWS::Route53::RecordSet'),
    ]
    expect(waitsFor).toHaveLength(4)
    expect(zoned.resources[authorizer as string]?.DependsOn).toEqual(
      expect.arrayContaining(waitsFor),
    )
    expect(dependencyCycle(zoned.resources)).toBeUndefined()
    Annotations.fromStack(zoned.stack).hasNoWarning('*', Match.stringLikeRegexp('authorizer "jwt"'))

    // Without the zone the record is the operator's: synth cannot know it exists yet.
    const unzoned = synth({ authorizer: 'jwt', domain })
    Annotations.fromStack(unzoned.stack).hasWarning(
      '*',
      Match.stringLikeRegexp(
        'the DNS record of auth.example.com is not in this stack.*deploy with -c authorizer=lambda first.*then deploy with -c authorizer=jwt',
      ),
    )
    const elsewhere = synth({ authorizer: 'jwt', issuer: 'https://issuer.example.com' })
    Annotations.fromStack(elsewhere.stack).hasWarning(
      '*',
      Match.stringLikeRegexp("the issuer https://issuer.example.com is not this API's address"),
    )
  })

  it('refuses strict revocation with the native JWT authorizer, which cannot check sessions', () => {
    expect(() => synth({ authorizer: 'jwt', strictRevocation: true })).toThrow(
      /strictRevocation needs the Lambda authorizer/,
    )
  })

  it('with strict revocation, caches no authorizer answer and lets the authorizer read sessions and users', () => {
    const synthesized = synth({ strictRevocation: true })
    synthesized.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerResultTtlInSeconds: 0,
    })
    expect(grants(synthesized).authorizer).toEqual(
      expectedGrants(LAMBDA_FUNCTIONS.authorizerStrict),
    )
    expect(grants(synthesized).authorizer?.['dynamodb:BatchGetItem']).toEqual([
      'table if ForAllValues:StringLike dynamodb:LeadingKeys=SESSION#*,USER#*',
    ])
    expect(environments(synthesized).authorizer).toMatchObject({
      TABLE_NAME: 'resolved-table_name',
      AUTHORIZER_SESSION_CACHE_SECONDS: '5',
    })
  })

  it('caps the authorizer cache at the shortest access-token lifetime and refuses a longer one', () => {
    const clients = [
      { ...testClients[0], access_token_ttl_seconds: 120 },
      testClients[1],
    ] as typeof testClients
    const authorizerSettings = { clockSkewSeconds: 300 }
    synth({ clients, authorizerSettings }).template.hasResourceProperties(
      'AWS::ApiGatewayV2::Authorizer',
      { AuthorizerResultTtlInSeconds: 120 },
    )
    expect(() =>
      synth({ clients, authorizerSettings, authorizerCacheTtl: Duration.minutes(3) }),
    ).toThrow(/exceeds the shortest access-token lifetime \(120 s\)/)
    expect(() => synth({ authorizerCacheTtl: Duration.minutes(1) })).toThrow(
      /exceeds the clock skew \(30 s\)/,
    )
    expect(() =>
      synth({ strictRevocation: true, authorizerCacheTtl: Duration.seconds(30) }),
    ).toThrow(/strict mode must not cache answers for more than 5 s/)
  })

  it('serves a custom domain (TLS 1.2, DNS alias records) as the issuer, closes the execute-api endpoint, and notifies the alarm topic', () => {
    const topicArn = 'arn:aws:sns:eu-west-1:111111111111:ops-alarms'
    const { template } = synth({
      domain: {
        domainName: 'auth.example.com',
        certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
        hostedZoneId: 'Z0123456789',
        hostedZoneName: 'example.com',
      },
      alarmTopicArn: topicArn,
    })
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { DisableExecuteApiEndpoint: true })
    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'auth.example.com',
      DomainNameConfigurations: [
        Match.objectLike({
          CertificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
          SecurityPolicy: 'TLS_1_2',
          EndpointType: 'REGIONAL',
        }),
      ],
    })
    template.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 1)
    for (const type of ['A', 'AAAA']) {
      template.hasResourceProperties('AWS::Route53::RecordSet', {
        Name: 'auth.example.com.',
        Type: type,
        HostedZoneId: 'Z0123456789',
      })
    }
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ ISSUER: 'https://auth.example.com' }) },
    })
    template.hasOutput('ApiUrl', { Value: 'https://auth.example.com' })
    // Firing and back to OK: whoever was paged learns that it is over.
    template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: [topicArn],
      OKActions: [topicArn],
    })
  })

  it('refuses an issuer that verifiers cannot use', () => {
    for (const issuer of [
      'http://auth.example.com',
      'https://auth.example.com/',
      'https://a.example?x=1',
      'auth',
    ]) {
      expect(() => synth({ issuer }), issuer).toThrow(/issuer must be an https URL/)
    }
  })

  it('refuses clients that would not fit in Lambda’s 4 KB of environment variables', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({
      ...testClients[0],
      client_id: `client-${i}`,
    }))
    expect(() => synth({ clients: many as typeof testClients })).toThrow(
      /the login function's environment takes \d+ bytes; Lambda allows 4096\. Largest: CLIENTS/,
    )
  })

  it('refuses clients that the functions would refuse at cold start, and a route limit above the stage’s', () => {
    expect(() => synth({ clients: [] })).toThrow(/clients must be a non-empty array/)
    expect(() => synth({ loginThrottle: { rateLimit: 3600, burstLimit: 40 } })).toThrow(
      /loginThrottle must not exceed throttle/,
    )
    expect(() => synth({ tokenThrottle: { rateLimit: 100, burstLimit: 6000 } })).toThrow(
      /tokenThrottle must not exceed throttle/,
    )
  })

  it('sets the log sampling share on every function, and turns tracing off everywhere when asked', () => {
    const { template } = synth({ logSamplePercent: 5, tracing: false })
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as Resource[]
    expect(functions.length).toBeGreaterThanOrEqual(8)
    for (const fn of functions) {
      const { Environment, TracingConfig } = fn.Properties as {
        Environment: { Variables: Record<string, string> }
        TracingConfig?: { Mode: string }
      }
      expect(Environment.Variables).toMatchObject({
        POWERTOOLS_LOGGER_SAMPLE_RATE: '0.05',
        POWERTOOLS_TRACE_ENABLED: 'false',
      })
      expect(TracingConfig).toEqual({ Mode: 'PassThrough' })
    }
  })

  it('caps the route limits left out at a lower stage limit', () => {
    const { template } = synth({ throttle: { rateLimit: 100, burstLimit: 150 } })
    const [, stage] = Object.entries(template.findResources('AWS::ApiGatewayV2::Stage'))[0] as [
      string,
      { Properties: Record<string, unknown> },
    ]
    expect(stage.Properties.RouteSettings).toEqual({
      'POST /token': { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 150 },
      'POST /login': { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 150 },
      'POST /me/password': { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    })
  })
})

describe('TokenService function settings (back-off, backdating, JWKS max-age, authorizer)', () => {
  const clients = [
    testClients[0],
    { ...testClients[1], audience: 'https://orders.example.com' },
  ] as typeof testClients

  it('hands custom values to the functions that read them, and nowhere else', () => {
    const env = environments(
      synth({
        clients,
        tokenBackdateSeconds: 10,
        jwksMaxAge: Duration.minutes(10),
        loginBackoff: {
          freeFailures: 5,
          baseSeconds: 2,
          maxSeconds: 600,
          failureWindowSeconds: 3600,
        },
        strictRevocation: true,
        authorizerSettings: {
          clockSkewSeconds: 60,
          sessionCacheSeconds: 2,
          maxTokenBytes: 8192,
          audiences: ['https://orders.example.com'],
        },
      }),
    )
    expect(Object.fromEntries(Object.entries(env).map(([name, e]) => [name, tunables(e)]))).toEqual(
      {
        login: {
          TOKEN_BACKDATE_SECONDS: '10',
          LOGIN_FREE_FAILURES: '5',
          LOGIN_BACKOFF_BASE_SECONDS: '2',
          LOGIN_BACKOFF_MAX_SECONDS: '600',
          LOGIN_FAILURE_WINDOW_SECONDS: '3600',
        },
        token: { TOKEN_BACKDATE_SECONDS: '10' },
        revoke: {},
        jwks: { JWKS_MAX_AGE_SECONDS: '600' },
        sessions: {},
        password: {
          LOGIN_FREE_FAILURES: '5',
          LOGIN_BACKOFF_BASE_SECONDS: '2',
          LOGIN_BACKOFF_MAX_SECONDS: '600',
          LOGIN_FAILURE_WINDOW_SECONDS: '3600',
        },
        me: {},
        authorizer: {
          AUTHORIZER_SKEW_SECONDS: '60',
          AUTHORIZER_SESSION_CACHE_SECONDS: '2',
          AUTHORIZER_MAX_TOKEN_BYTES: '8192',
          AUTHORIZER_AUDIENCES: 'https://orders.example.com',
          AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: '910',
          AUTHORIZER_CACHE_SECONDS: '0',
        },
        forwarder: {},
      },
    )
    const tuned = (name: string) => tunedOf(env[name] ?? {})
    expect(tuned('login').loginBackoff).toEqual({
      freeFailures: 5,
      baseSeconds: 2,
      maxSeconds: 600,
      windowSeconds: 3600,
    })
    expect(tuned('password').loginBackoff).toEqual({
      freeFailures: 5,
      baseSeconds: 2,
      maxSeconds: 600,
      windowSeconds: 3600,
    })
    expect(tuned('login').backdate).toBe(10)
    expect(tuned('token').backdate).toBe(10)
    expect(tuned('jwks').jwksMaxAge).toBe(600)
    expect(tuned('authorizer').sessionCache).toBe(2)
    expect(
      loadAuthorizerConfig({ ...env.authorizer, ISSUER: 'https://auth.example.com' }),
    ).toMatchObject({
      skewSeconds: 60,
      maxTokenBytes: 8192,
      audiences: ['https://orders.example.com'],
    })
    // Strict mode runs its own bundle, the only authorizer with a DynamoDB client.
    expect(env.authorizer?.TABLE_NAME).toBe('resolved-table_name')
  })

  it('hands the breached-password check, off by default, to the password function alone', () => {
    const env = environments(
      synth({ passwordBreachCheck: { url: 'https://api.pwnedpasswords.com', timeoutMs: 2000 } }),
    )
    for (const [name, variables] of Object.entries(env)) {
      const set = Object.keys(variables).filter((key) => key.startsWith('PASSWORD_BREACH_CHECK_'))
      expect(set, name).toEqual(
        name === 'password'
          ? ['PASSWORD_BREACH_CHECK_URL', 'PASSWORD_BREACH_CHECK_TIMEOUT_MS']
          : [],
      )
    }
    expect(loadBreachCheck(env.password)).toEqual({
      url: 'https://api.pwnedpasswords.com',
      timeoutMs: 2000,
    })
    expect(loadBreachCheck(environments(synth({})).password)).toBeUndefined()
    expect(() => synth({ passwordBreachCheck: { url: 'http://range.example.com' } })).toThrow(
      'TokenService: passwordBreachCheck.url must be an https URL, got "http://range.example.com"',
    )
    expect(() =>
      synth({ passwordBreachCheck: { url: 'https://range.example.com', timeoutMs: 50 } }),
    ).toThrow(/passwordBreachCheck\.timeoutMs must be an integer from 100 to 10000/)
  })

  it('gives the native JWT authorizer the chosen audiences', () => {
    const { template } = synth({
      clients,
      authorizer: 'jwt',
      authorizerSettings: { audiences: ['https://orders.example.com'] },
    })
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      JwtConfiguration: Match.objectLike({ Audience: ['https://orders.example.com'] }),
    })
  })

  it('refuses, at synth, every value the functions would refuse at cold start', () => {
    const refuse = (props: Partial<TokenServiceStackProps>, message: RegExp) =>
      expect(() => synth(props), message.source).toThrow(message)
    refuse(
      { tokenBackdateSeconds: 61 },
      /tokenBackdateSeconds must be an integer from 0 to 60 \(TOKEN_BACKDATE_SECONDS\), got 61/,
    )
    refuse(
      { jwksMaxAge: Duration.days(2) },
      /jwksMaxAge must be an integer from 0 to 86400 \(JWKS_MAX_AGE_SECONDS\)/,
    )
    refuse({ loginBackoff: { freeFailures: 101 } }, /loginBackoff\.freeFailures .* from 0 to 100/)
    refuse({ loginBackoff: { baseSeconds: 0 } }, /loginBackoff\.baseSeconds .* from 1 to 3600/)
    refuse({ loginBackoff: { maxSeconds: 1.5 } }, /loginBackoff\.maxSeconds .* from 1 to 86400/)
    refuse(
      { loginBackoff: { failureWindowSeconds: 59 } },
      /loginBackoff\.failureWindowSeconds .* from 60 to 2592000/,
    )
    refuse(
      { loginBackoff: { maxSeconds: 7200, failureWindowSeconds: 3600 } },
      /failureWindowSeconds \(3600\) must be at least loginBackoff\.maxSeconds \(7200\)/,
    )
    refuse(
      { authorizerSettings: { clockSkewSeconds: 301 } },
      /clockSkewSeconds must be an integer from 0 to 300 \(AUTHORIZER_SKEW_SECONDS\)/,
    )
    refuse(
      { strictRevocation: true, authorizerSettings: { sessionCacheSeconds: 61 } },
      /sessionCacheSeconds must be an integer from 0 to 60/,
    )
    refuse(
      { authorizerSettings: { maxTokenBytes: 1023 } },
      /maxTokenBytes must be an integer from 1024 to 16384/,
    )
    refuse({ authorizerSettings: { sessionCacheSeconds: 2 } }, /applies to strict mode only/)
    refuse(
      { authorizerSettings: { audiences: ['https://other.example.com'] } },
      /audience "https:\/\/other\.example\.com" is no client's audience/,
    )
    refuse({ authorizerSettings: { audiences: [] } }, /audiences must not be empty/)
    refuse(
      { authorizer: 'jwt', authorizerSettings: { clockSkewSeconds: 10 } },
      /authorizerSettings clockSkewSeconds apply to the Lambda authorizer only/,
    )
  })

  it('uses the bounds and defaults of functions/settings.ts, which the functions load with', () => {
    expect(loadBackdateSeconds({})).toBe(DEFAULTS.tokenBackdateSeconds)
    expect(loadJwksMaxAgeSeconds({})).toBe(DEFAULTS.jwksMaxAge.toSeconds())
    expect(loadLoginBackoff({})).toEqual({
      freeFailures: DEFAULTS.loginBackoff.freeFailures,
      baseSeconds: DEFAULTS.loginBackoff.baseSeconds,
      maxSeconds: DEFAULTS.loginBackoff.maxSeconds,
      windowSeconds: DEFAULTS.loginBackoff.failureWindowSeconds,
    })
    expect(
      loadAuthorizerConfig({ ISSUER: 'https://auth.example.com', AUTHORIZER_AUDIENCES: 'a' }),
    ).toMatchObject({
      skewSeconds: DEFAULTS.authorizerSettings.clockSkewSeconds,
      maxTokenBytes: DEFAULTS.authorizerSettings.maxTokenBytes,
    })
    expect(loadSessionCacheSeconds({})).toBe(DEFAULTS.authorizerSettings.sessionCacheSeconds)
    // Every integer setting: its bounds load, one past them fails naming the variable.
    const base = {
      ISSUER: 'https://auth.example.com',
      AUTHORIZER_AUDIENCES: 'https://api.example.com',
      // The window must cover the longest wait: test its lower end with a short one.
      LOGIN_BACKOFF_MAX_SECONDS: '60',
      // The skew must cover the answer cache: test the cache's upper end with the longest skew.
      AUTHORIZER_SKEW_SECONDS: '300',
    }
    const loadAll = (env: Record<string, string>) => {
      tunedOf(env)
      loadAuthorizerConfig(env)
    }
    const integers = (Object.keys(SETTINGS) as SettingName[]).filter(
      (name) => SETTINGS[name].type === 'integer',
    )
    expect(integers.length).toBeGreaterThan(10)
    for (const variable of integers) {
      const { min, max } = SETTINGS[variable] as { min: number; max: number }
      const load = (value: number) => () => loadAll({ ...base, [variable]: String(value) })
      expect(load(min), `${variable}=${min}`).not.toThrow()
      expect(load(max), `${variable}=${max}`).not.toThrow()
      expect(load(min - 1), `${variable}=${min - 1}`).toThrow(variable)
      expect(load(max + 1), `${variable}=${max + 1}`).toThrow(variable)
    }
  })
})

describe('TokenService signing keys', () => {
  const rotating = [
    { id: 'k2026-11', state: 'active' },
    { id: 'k2026-05', state: 'retiring' },
  ] as const

  it('creates one key and alias per entry; only the active one signs, every one is published', () => {
    const synthesized = synth({ signingKeys: rotating })
    // Two signing keys, and the grace key.
    synthesized.template.resourceCountIs('AWS::KMS::Key', 3)
    synthesized.template.resourceCountIs('AWS::KMS::Alias', 3)
    const matrix = grants(synthesized)
    for (const name of ['login', 'token']) {
      expect(matrix[name]?.['kms:Sign'], name).toEqual([`key:k2026-11 ${RS256_DIGEST}`])
      expect(matrix[name]?.['kms:GetPublicKey'], name).toEqual(['key:k2026-11'])
    }
    expect(matrix.jwks?.['kms:GetPublicKey']).toEqual([TAGGED_KEYS, 'key:k2026-05', 'key:k2026-11'])
    expect(matrix.jwks?.['kms:Sign']).toBeUndefined()
    expect(
      Object.keys(matrix.authorizer ?? {}).filter((action) => action.startsWith('kms:')),
    ).toEqual([])
    const { stack, logicalId } = synthesized
    const variables = (fn: { function: object }) =>
      (
        synthesized.resources[logicalId(fn.function as never)]?.Properties.Environment as
          | { Variables: Record<string, unknown> }
          | undefined
      )?.Variables ?? {}
    const active = { 'Fn::GetAtt': [logicalId(stack.service.activeKey as Construct), 'Arn'] }
    const retiring = {
      'Fn::GetAtt': [logicalId(stack.service.signingKeys['k2026-05'] as never), 'Arn'],
    }
    for (const name of ['login', 'token', 'jwks'] as const) {
      expect(variables(stack.service.functions[name]).SIGNING_KEY_ID, name).toEqual(active)
    }
    // Only the jwks function publishes the retiring key.
    expect(variables(stack.service.functions.jwks).RETIRING_KEY_IDS).toEqual(retiring)
    expect(variables(stack.service.functions.login).RETIRING_KEY_IDS).toBeUndefined()
  })

  it('lets login and token also sign with and read the transition keys it is given, and refuses one that is not listed', () => {
    const matrix = grants(synth({ signingKeys: rotating, transitionSigningKeys: ['k2026-05'] }))
    for (const name of ['login', 'token']) {
      expect(matrix[name]?.['kms:Sign'], name).toEqual([
        `key:k2026-05 ${RS256_DIGEST}`,
        `key:k2026-11 ${RS256_DIGEST}`,
      ])
      expect(matrix[name]?.['kms:GetPublicKey'], name).toEqual(['key:k2026-05', 'key:k2026-11'])
    }
    expect(matrix.jwks?.['kms:Sign']).toBeUndefined()
    expect(() => synth({ signingKeys: rotating, transitionSigningKeys: ['k2027-01'] })).toThrow(
      /transitionSigningKeys names "k2027-01", which signingKeys does not list/,
    )
  })

  it('keeps every key’s logical id when the list is reordered or the active key changes', () => {
    const keyIds = (signingKeys: readonly { id: string; state: 'active' | 'retiring' }[]) => {
      const { stack, logicalId } = synth({ signingKeys })
      return Object.fromEntries(
        Object.entries(stack.service.signingKeys).map(([id, key]) => [id, logicalId(key)]),
      )
    }
    const before = keyIds(rotating)
    expect(
      keyIds([
        { id: 'k2026-05', state: 'active' },
        { id: 'k2026-11', state: 'retiring' },
      ]),
    ).toEqual(before)
    expect(keyIds([...rotating, { id: 'k2027-05', state: 'retiring' }])).toMatchObject(before)
  })

  it('refuses a list without exactly one active key, with a duplicate id, an unknown state or a bad id', () => {
    const refuse = (signingKeys: unknown, message: RegExp) =>
      expect(() => synth({ signingKeys: signingKeys as never })).toThrow(message)
    refuse([{ id: 'k1', state: 'retiring' }], /no active key/)
    refuse(
      [
        { id: 'k1', state: 'active' },
        { id: 'k2', state: 'active' },
      ],
      /2 active keys \(k1, k2\)/,
    )
    refuse(
      [
        { id: 'k1', state: 'active' },
        { id: 'k1', state: 'retiring' },
      ],
      /"k1" is listed twice/,
    )
    refuse([{ id: 'k1', state: 'enabled' }], /state must be "active" or "retiring"/)
    refuse([{ id: 'k 1', state: 'active' }], /id must be 1-32 letters/)
    refuse([], /at least one key/)
  })
})

describe('TokenServiceStack', () => {
  it('is environment-agnostic unless given an env: synth needs no account, region or credentials', () => {
    const stack = new TokenServiceStack(testApp(), 'Offline', { clients: testClients })
    expect(Token.isUnresolved(stack.account)).toBe(true)
    expect(Token.isUnresolved(stack.region)).toBe(true)
  })
})
