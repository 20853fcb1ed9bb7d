import { execFile } from 'node:child_process'
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type App, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib'
import { Annotations, Match } from 'aws-cdk-lib/assertions'
import * as iam from 'aws-cdk-lib/aws-iam'
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api'
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import type { IConstruct } from 'constructs'
import { describe, expect, it } from 'vitest'
import { addNagPacks, demoClientsIn, warnOnDemoClients } from '../../lib/app-context.js'
import { readAppSettings } from '../../lib/config.js'
import { keyChangeRules } from '../../lib/key-ledger.js'
import { TokenServiceStack, type TokenServiceStackProps } from '../../lib/token-service-stack.js'
import committed from '../../token-service.config.js'
import { demoClients, testApp, testClients } from './synth.js'

const run = promisify(execFile)

const read = (config: unknown, context: Record<string, unknown> = {}) =>
  readAppSettings(testApp(context), { path: 'token-service.config.ts', config })

describe('the committed configuration (token-service.config.ts)', () => {
  it('deploys the stack TokenService with the demo clients, one RS256 key and the recorded ledger', () => {
    const settings = read(committed)
    expect(settings.stackName).toBe('TokenService')
    expect(settings.props.clients).toEqual(demoClients)
    expect(settings.keyLedgerPath).toBe('signing-keys.lock.json')
    expect(settings.props).toMatchObject({
      algorithm: 'RS256',
      signingKeys: [{ id: 'k1', state: 'active' }],
      authorizer: 'lambda',
      strictRevocation: false,
      removalPolicy: RemovalPolicy.RETAIN,
      logRetention: 90,
    })
    for (const key of ['domain', 'alarmTopicArn', 'issuer']) {
      expect(settings.props, key).not.toHaveProperty(key)
    }
  })

  it('turns every key into the stack’s props', () => {
    const settings = read({
      stackName: 'Auth-Prod',
      clients: demoClients.slice(0, 1),
      algorithm: 'ES256',
      signingKeys: [
        { id: 'k2', state: 'active' },
        { id: 'k1', state: 'retiring' },
      ],
      signingKeysLock: 'off',
      authorizer: 'lambda',
      strictRevocation: true,
      authorizerCacheTtlSeconds: 0,
      throttle: { rateLimit: 100 },
      tokenThrottle: { rateLimit: 90, burstLimit: 900 },
      loginThrottle: { rateLimit: 20, burstLimit: 10 },
      passwordThrottle: { burstLimit: 30 },
      removalPolicy: 'destroy',
      deletionProtection: true,
      logRetentionDays: 365,
      alarmTopicArn: 'arn:aws:sns:eu-west-1:111111111111:ops',
      domain: {
        domainName: 'auth.example.com',
        certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
        hostedZoneId: 'Z1',
        hostedZoneName: 'example.com',
      },
      jwksMaxAgeSeconds: 600,
      tokenBackdateSeconds: 10,
      loginBackoff: { freeFailures: 5, maxSeconds: 600, failureWindowSeconds: 3600 },
      authorizerSettings: {
        clockSkewSeconds: 60,
        sessionCacheSeconds: 2,
        maxTokenBytes: 8192,
        audiences: ['https://api.example.com'],
      },
    })
    expect(settings.stackName).toBe('Auth-Prod')
    expect(settings.keyLedgerPath).toBeUndefined()
    expect(settings.props).toMatchObject({
      clients: demoClients.slice(0, 1),
      algorithm: 'ES256',
      signingKeys: [
        { id: 'k2', state: 'active' },
        { id: 'k1', state: 'retiring' },
      ],
      authorizer: 'lambda',
      strictRevocation: true,
      throttle: { rateLimit: 100, burstLimit: 5000 },
      tokenThrottle: { rateLimit: 90, burstLimit: 900 },
      loginThrottle: { rateLimit: 20, burstLimit: 10 },
      passwordThrottle: { rateLimit: 50, burstLimit: 30 },
      removalPolicy: RemovalPolicy.DESTROY,
      deletionProtection: true,
      logRetention: 365,
      alarmTopicArn: 'arn:aws:sns:eu-west-1:111111111111:ops',
      domain: {
        domainName: 'auth.example.com',
        certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
        hostedZoneId: 'Z1',
        hostedZoneName: 'example.com',
      },
      tokenBackdateSeconds: 10,
      loginBackoff: { freeFailures: 5, maxSeconds: 600, failureWindowSeconds: 3600 },
      authorizerSettings: {
        clockSkewSeconds: 60,
        sessionCacheSeconds: 2,
        maxTokenBytes: 8192,
        audiences: ['https://api.example.com'],
      },
    })
    expect(settings.props.authorizerCacheTtl?.toSeconds()).toBe(0)
    expect(settings.props.jwksMaxAge?.toSeconds()).toBe(600)
  })

  it('lets -c KEY=VALUE override one key, or one field of one (a dotted path), for one synth', () => {
    const settings = read(committed, {
      strictRevocation: 'true',
      'loginBackoff.freeFailures': '5',
      signingKeys: '[{"id":"k2","state":"active"},{"id":"k1","state":"retiring"}]',
      issuer: 'https://auth.example.com',
      authorizer: 'jwt',
    })
    expect(settings.props).toMatchObject({
      strictRevocation: true,
      loginBackoff: { freeFailures: 5, baseSeconds: 1, maxSeconds: 900 },
      signingKeys: [
        { id: 'k2', state: 'active' },
        { id: 'k1', state: 'retiring' },
      ],
      issuer: 'https://auth.example.com',
      authorizer: 'jwt',
    })
    // cdk.json's feature flags and the CDK's own context are not settings.
    expect(() => read(committed, { '@aws-cdk/core:checkSecretUsage': true })).not.toThrow()
  })

  it('reads the optional breached-password check (off unless set), refusing one without its url', () => {
    expect(read(committed).props.passwordBreachCheck).toBeUndefined()
    const on = read(committed, {
      'passwordBreachCheck.url': 'https://api.pwnedpasswords.com',
      'passwordBreachCheck.timeoutMs': '2000',
    })
    expect(on.props.passwordBreachCheck).toEqual({
      url: 'https://api.pwnedpasswords.com',
      timeoutMs: 2000,
    })
    expect(() => read({ ...committed, passwordBreachCheck: { timeoutMs: 2000 } })).toThrow(
      /passwordBreachCheck needs url/,
    )
    expect(() =>
      read({ ...committed, passwordBreachCheck: { url: 'https://x.example', timeoutMs: 20 } }),
    ).toThrow(/passwordBreachCheck\.timeoutMs must be an integer from 100 to 10000/)
  })

  it('refuses unknown keys, at the top level, nested, in a client and in -c, naming what is allowed and the key a typo meant', () => {
    expect(() => read({ ...committed, loginBackof: {} })).toThrow(
      /token-service\.config\.ts: loginBackof is not a setting: did you mean loginBackoff\? \(allowed: stackName, clients, /,
    )
    expect(() => read({ ...committed, loginBackoff: { freeFailure: 5 } })).toThrow(
      /loginBackoff\.freeFailure is not a setting: did you mean freeFailures\? \(allowed: freeFailures, baseSeconds, maxSeconds, failureWindowSeconds\)/,
    )
    expect(() => read({ ...committed, bogus: 1 })).toThrow(/bogus is not a setting \(allowed: /)
    expect(() =>
      read({ ...committed, clients: [{ ...demoClients[0], reuse_grace_secs: 0 }] }),
    ).toThrow(
      /clients: clients\[0\]\.reuse_grace_secs is not a client setting \(allowed: client_id, /,
    )
    expect(() => read(committed, { strictRevokation: 'true' })).toThrow(
      /-c strictRevokation: strictRevokation is not a setting: did you mean strictRevocation\?/,
    )
  })

  it('refuses a bad value with a message that names the key and the allowed values', () => {
    const refuse = (config: Record<string, unknown>, message: RegExp) =>
      expect(() => read({ ...committed, ...config })).toThrow(message)
    refuse({ algorithm: 'HS256' }, /algorithm must be one of "RS256", "ES256", got "HS256"/)
    refuse(
      { domain: { domainName: 'auth.example.com' } },
      /domain needs both domainName and certificateArn/,
    )
    refuse({ logRetentionDays: 100 }, /logRetentionDays must be one of 1, 3, 5, 7, 14, 30, 60, 90/)
    refuse({ strictRevocation: 'yes' }, /strictRevocation must be true or false, got "yes"/)
    refuse({ clients: [{ client_id: 'x' }] }, /clients: clients\[0\]\.type/)
    refuse({ signingKeys: [] }, /signingKeys: signingKeys must list at least one key/)
    refuse(
      { loginBackoff: { freeFailures: 101 } },
      /loginBackoff\.freeFailures must be an integer from 0 to 100 \(LOGIN_FREE_FAILURES\), got 101/,
    )
    expect(() => read(committed, { 'loginBackoff.freeFailures': 'three' })).toThrow(
      /with -c overrides: loginBackoff\.freeFailures must be an integer from 0 to 100/,
    )
  })

  it('keeps every other setting through a key rotation that edits signingKeys in the file', () => {
    const production = {
      ...committed,
      clients: testClients,
      issuer: 'https://auth.acme.io',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:111111111111:ops',
      domain: {
        domainName: 'auth.acme.io',
        certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
      },
      strictRevocation: true,
    }
    const steps = [
      [{ id: 'k1', state: 'active' }],
      [
        { id: 'k1', state: 'active' },
        { id: 'k2', state: 'retiring' },
      ],
      [
        { id: 'k2', state: 'active' },
        { id: 'k1', state: 'retiring' },
      ],
      [{ id: 'k2', state: 'active' }],
    ]
    const props = steps.map((signingKeys) => read({ ...production, signingKeys }).props)
    for (const [index, step] of props.entries()) {
      const { signingKeys, ...rest } = step
      const { signingKeys: first, ...unchanged } = props[0] ?? {}
      expect(signingKeys, `step ${index}`).toEqual(steps[index])
      expect(rest, `step ${index}`).toEqual(unchanged)
      expect(rest).toMatchObject({
        issuer: 'https://auth.acme.io',
        alarmTopicArn: 'arn:aws:sns:eu-west-1:111111111111:ops',
        strictRevocation: true,
      })
      expect(first).toEqual(steps[0])
    }
  })

  it('warns while the stack deploys the demo clients, so that --strict refuses it', () => {
    expect(demoClientsIn(demoClients)).toEqual(demoClients.map((client) => client.client_id))
    expect(demoClientsIn(testClients)).toEqual(['native', 'spa']) // an example.com audience
    const own = [
      {
        client_id: 'app',
        type: 'spa',
        audience: 'https://api.acme.io',
        allowed_origins: ['https://app.acme.io'],
        cookie_mode: true,
      },
    ] as const
    expect(demoClientsIn(own as never)).toEqual([])
    const app = testApp()
    const stack = new TokenServiceStack(app, 'Warned', { clients: demoClients })
    warnOnDemoClients(stack, demoClients)
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('demo'))
    expect(warnings).toHaveLength(1)
    expect(String(warnings[0]?.entry.data)).toMatch(/replace them in token-service\.config\.ts/)
  })

  it('keeps a retired key published for the longest token lifetime plus the authorizer’s skew and backdating', () => {
    const now = new Date('2026-05-01T00:00:00.000Z')
    const longest = 900 // testClients: the native client's access-token lifetime
    expect(keyChangeRules({ clients: testClients }, now).retireWaitSeconds).toBe(longest + 60)
    expect(
      keyChangeRules(
        {
          clients: testClients,
          tokenBackdateSeconds: 10,
          authorizerSettings: { clockSkewSeconds: 300 },
        },
        now,
      ).retireWaitSeconds,
    ).toBe(longest + 310)
    expect(
      keyChangeRules({ clients: testClients, jwksMaxAge: Duration.minutes(10) }, now)
        .publishWaitSeconds,
    ).toBe(2 * 3600 + 600)
  })
})

/** Every acknowledgement recorded in the tree, as `{ rule id: reason }` per construct path. */
function acknowledgements(scope: IConstruct): { path: string; id: string; reason: string }[] {
  const found: { path: string; id: string; reason: string }[] = []
  for (const construct of scope.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        found.push({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason: String(reason),
        })
      }
    }
  }
  return found
}

describe('cdk-nag (AwsSolutions and Serverless packs, cdk-nag 3 plugins)', () => {
  const configurations: Record<string, Partial<TokenServiceStackProps>> = {
    defaults: {},
    'strict revocation, two keys': {
      strictRevocation: true,
      signingKeys: [
        { id: 'k2', state: 'active' },
        { id: 'k1', state: 'retiring' },
      ],
    },
    'native JWT authorizer': { authorizer: 'jwt' },
    'no security-event bus': { securityEvents: { bus: false } },
    // The tagged-key acknowledgement names the region and account as the template has them.
    'pinned account and region, reserved concurrency, warm throughput': {
      env: { account: '111111111111', region: 'eu-west-1' },
      reservedConcurrency: { login: 50, token: 200, authorizer: 100 },
      tableWarmThroughput: { readUnitsPerSecond: 20_000, writeUnitsPerSecond: 8000 },
    },
    'customer-managed table key, tracing off, other alarm thresholds': {
      tableEncryption: 'customer-managed',
      tracing: false,
      logSamplePercent: 10,
      alarms: { serverErrorsPerThousand: 5, latencyP99Ms: 500 },
      strictRevocation: true,
    },
    'ES256, custom domain, alarm topic': {
      algorithm: 'ES256',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:111111111111:ops',
      domain: {
        domainName: 'auth.example.com',
        certificateArn: 'arn:aws:acm:eu-west-1:111111111111:certificate/abc',
        hostedZoneId: 'Z1',
        hostedZoneName: 'example.com',
      },
    },
  }

  const build = (
    props: Partial<TokenServiceStackProps>,
  ): { app: App; stack: TokenServiceStack } => {
    const app = testApp()
    const stack = new TokenServiceStack(app, 'Nagged', { clients: testClients, ...props })
    addNagPacks(app)
    return { app, stack }
  }

  for (const [name, props] of Object.entries(configurations)) {
    it(`synthesizes with no unacknowledged finding, error or warning: ${name}`, () => {
      const { app, stack } = build(props)
      for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
        const report = pack.validateScope(stack)
        expect(
          report.violations.map(
            (v) => `${v.severity} ${v.ruleName} ${v.violatingResources[0]?.constructPath}`,
          ),
        ).toEqual([])
      }
      expect(() => app.synth()).not.toThrow()
    })
  }

  it('fails synth on a finding nobody acknowledged (a wildcard grant)', () => {
    const { app, stack } = build({})
    stack.service.functions.me.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:*'],
        resources: [stack.service.table.tableArn],
      }),
    )
    expect(() => app.synth()).toThrow(/AwsSolutions-IAM5\[Action::dynamodb:\*\]/)
  })

  it('acknowledges only the six reviewed findings, each with its reason', () => {
    const { stack } = build({})
    const acks = acknowledgements(stack)
    const taggedKeys =
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]'
    expect([...new Set(acks.map((ack) => ack.id))].sort()).toEqual([
      'AwsSolutions-APIG4',
      'AwsSolutions-IAM5[Resource::*]',
      taggedKeys,
      'AwsSolutions-SQS3',
      'Serverless-LambdaDLQ',
      'Serverless-SQSRedrivePolicy',
    ])
    // "A queue without a dead-letter queue" only on the one that is itself the dead-letter queue.
    const deadLetters = stack.service.securityEvents?.deadLetterQueue.node.path
    for (const ack of acks.filter((a) => /SQS/.test(a.id))) expect(ack.path).toBe(deadLetters)
    // The read of the service's keys by tag: the jwks function only.
    expect(acks.filter((ack) => ack.id === taggedKeys).map((ack) => ack.path)).toEqual([
      `${stack.stackName}/TokenService/Jwks/Role`,
    ])
    for (const ack of acks) expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThan(60)
    // APIG4 only on the public OAuth routes, never on a bearer route.
    const apig4 = acks
      .filter((ack) => ack.id === 'AwsSolutions-APIG4')
      .map((ack) => ack.path.split('/')[3])
    expect(apig4.sort()).toEqual(
      [
        'GET--.well-known--jwks.json',
        'GET--.well-known--oauth-authorization-server',
        'GET--.well-known--openid-configuration',
        'POST--login',
        'POST--revoke',
        'POST--token',
      ].sort(),
    )
  })
})

describe('bin/app.ts', () => {
  it('uses the construct as a consumer does: the service, the key ledger and its gate by the package name', () => {
    const importsOf = (file: string) =>
      [...readFileSync(file, 'utf8').matchAll(/ from '([^']+)'/g)].map((match) => match[1])
    const app = ['bin/app.ts', 'lib/app-stacks.ts', 'lib/token-service-stack.ts'].flatMap(importsOf)
    expect(app).toContain('@rotating-token-service/cdk')
    // The construct's own modules are the package's inside; the app reaches none of them.
    const inside =
      /\/(token-service(-(props|keys|functions|api|table|edge))?|signing-keys|key-ledger|token-authorizer|bundling)\.js$/
    expect(app.filter((from) => inside.test(from ?? ''))).toEqual([])
  })

  it('ends a synth with a typo in the config file with one line naming the file and the key, no stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'token-service-app-'))
    const config = join(dir, 'typo.config.ts')
    writeFileSync(
      config,
      `export default ${JSON.stringify({ clients: testClients, logRetentionDay: 90 })}\n`,
    )
    const failure = await run(
      process.execPath,
      ['--conditions=rotating-token-service-source', '--import', 'tsx', 'bin/app.ts'],
      {
        env: {
          ...process.env,
          CDK_OUTDIR: join(dir, 'out'),
          CDK_CONTEXT_JSON: JSON.stringify({ 'aws:cdk:bundling-stacks': [], config }),
        },
        timeout: 120_000,
      },
    ).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failure?.code).toBe(1)
    expect(failure?.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${config}: logRetentionDay is not a setting: did you mean logRetentionDays\\? \\(allowed: `,
        ),
      ),
    ])
  }, 150_000)

  it('refuses an unsafe signing-key change and leaves the ledger as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'token-service-app-'))
    const lock = join(dir, 'signing-keys.lock.json')
    const ledger = {
      version: 1,
      stacks: {
        TokenService: {
          algorithm: 'RS256',
          active: 'k1',
          keys: { k1: { publishedAt: '2026-01-01T00:00:00.000Z' } },
          removed: [],
        },
      },
    }
    writeFileSync(lock, JSON.stringify(ledger))
    const context = {
      'aws:cdk:bundling-stacks': [],
      signingKeysLock: lock,
      signingKeys: '[{"id":"k2","state":"active"}]',
    }
    const failure = await run(
      process.execPath,
      ['--conditions=rotating-token-service-source', '--import', 'tsx', 'bin/app.ts'],
      {
        env: {
          ...process.env,
          CDK_OUTDIR: join(dir, 'out'),
          CDK_CONTEXT_JSON: JSON.stringify(context),
        },
        timeout: 120_000,
      },
    ).then(
      () => undefined,
      (error: { stderr: string }) => error,
    )
    expect(failure?.stderr).toContain('Unsafe signing-key change for stack TokenService')
    expect(failure?.stderr).toContain('the active key "k1" was removed')
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(ledger)
  }, 150_000)

  it('synthesizes envelope signing in two regions and records its key in the ledger as an envelope key, multi-Region, for every region', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'token-service-app-'))
    const lock = join(dir, 'signing-keys.lock.json')
    const out = join(dir, 'out')
    const context = {
      'aws:cdk:bundling-stacks': [],
      signingKeysLock: lock,
      signing: 'envelope',
      regions: '["eu-west-1","us-east-1"]',
      issuer: 'https://auth.example.com',
    }
    await run(
      process.execPath,
      ['--conditions=rotating-token-service-source', '--import', 'tsx', 'bin/app.ts'],
      {
        env: { ...process.env, CDK_OUTDIR: out, CDK_CONTEXT_JSON: JSON.stringify(context) },
        timeout: 120_000,
      },
    )
    // One ledger entry, the stack name's, for every region's stack.
    const written = JSON.parse(readFileSync(lock, 'utf8'))
    expect(Object.keys(written.stacks)).toEqual(['TokenService'])
    expect(written.stacks.TokenService.keys.k1).toMatchObject({
      signing: 'envelope',
      multiRegion: true,
    })
    const resources = (name: string) =>
      Object.values(
        JSON.parse(readFileSync(join(out, `${name}.template.json`), 'utf8')).Resources as Record<
          string,
          { Type: string; Properties: Record<string, unknown> }
        >,
      )
    expect(
      resources('TokenService').filter(
        (r) => r.Type === 'AWS::KMS::Key' && r.Properties.MultiRegion === true,
      ),
    ).toHaveLength(1)
    expect(
      resources('TokenService-us-east-1').filter((r) => r.Type === 'AWS::KMS::ReplicaKey'),
    ).toHaveLength(1)
  }, 150_000)
})

describe('npx cdk synth', () => {
  it('has every feature flag of this aws-cdk-lib set in cdk.json, at its recommended value', () => {
    const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as {
      context: Record<string, unknown>
    }
    // Each was checked to leave the template as it was (only CDKMetadata changed).
    expect(Object.keys(CURRENTLY_RECOMMENDED_FLAGS).filter((flag) => !(flag in context))).toEqual(
      [],
    )
    for (const [flag, value] of Object.entries(CURRENTLY_RECOMMENDED_FLAGS)) {
      expect(context[flag], flag).toEqual(value)
    }
  })

  it('runs offline with no AWS credentials, bundles every function with esbuild (minified, no source maps, AWS SDK inside) and passes cdk-nag', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'token-service-synth-'))
    const lock = join(outdir, 'signing-keys.lock.json')
    const env: NodeJS.ProcessEnv = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' }
    for (const name of Object.keys(env)) if (/^AWS_|^CDK_DEFAULT_/.test(name)) delete env[name]
    env.AWS_EC2_METADATA_DISABLED = 'true'
    const { stderr } = await run(
      'node_modules/.bin/cdk',
      [
        'synth',
        '--quiet',
        '--no-notices',
        '--output',
        outdir,
        '--context',
        `signingKeysLock=${lock}`,
      ],
      { env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
    )
    // The demo clients' warning, with no source line ("lib/app-context.ts:33:25") before it.
    expect(stderr).toContain('WARNING clients demo-native, demo-spa, demo-page look like the demo')
    expect(stderr).not.toMatch(/\.ts:\d+:\d+/)
    const template = JSON.parse(readFileSync(join(outdir, 'TokenService.template.json'), 'utf8'))
    const functions = Object.values(template.Resources as Record<string, { Type: string }>).filter(
      (r) => r.Type === 'AWS::Lambda::Function',
    )
    // The seven HTTP functions, the authorizer and the security events' forwarder.
    expect(functions).toHaveLength(9)
    const bundles = readdirSync(outdir)
      .map((name) => join(outdir, name, 'index.mjs'))
      .filter((file) => existsSync(file))
    expect(bundles).toHaveLength(9)
    for (const bundle of bundles) {
      const code = readFileSync(bundle, 'utf8')
      // Source maps cost every cold start (docs/benchmarks.md).
      expect(existsSync(`${bundle}.map`), bundle).toBe(false)
      expect(code, bundle).not.toContain('sourceMappingURL')
      // Minified: a few very long lines (the banner and template literals add some breaks).
      expect(code.length / code.split('\n').length, bundle).toBeGreaterThan(1000)
      expect(code, bundle).not.toMatch(/from\s*["']@aws-sdk\/|import\(\s*["']@aws-sdk\//) // bundled
      expect(statSync(bundle).size, bundle).toBeLessThan(1024 * 1024)
    }
    // cdk-nag finds nothing; the report's construct annotations are the demo clients' warning and
    // the unpinned account and region's (the committed config pins neither).
    const reports = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'))
      .pluginReports as {
      pluginName: string
      violations: { ruleName: string; severity: string }[]
    }[]
    expect(
      reports.flatMap((report) =>
        report.violations.map((v) => `${report.pluginName}: ${v.ruleName} (${v.severity})`),
      ),
    ).toEqual([
      'Construct Annotations: Annotation::token-service:demo-clients (warning)',
      'Construct Annotations: Annotation::token-service:unpinned-environment (warning)',
    ])
    expect(JSON.parse(readFileSync(lock, 'utf8')).stacks.TokenService.active).toBe('k1')
  }, 300_000)
})
