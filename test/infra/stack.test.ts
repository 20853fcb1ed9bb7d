import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App, RemovalPolicy } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import type { CfnResource } from 'aws-cdk-lib/core'
import { AwsSolutionsChecks } from 'cdk-nag'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { TokenServiceStack } from '../../lib/token-service-stack.js'

type Statement = { Action: string | string[]; Effect: string; Resource: unknown }
type Resource = { Type: string; Properties: Record<string, unknown> }

const clients = JSON.parse(readFileSync('clients.local.json', 'utf8')) as ClientConfig[]

describe('TokenServiceStack', () => {
  let outdir: string
  let stack: TokenServiceStack
  let template: Template
  let resources: Record<string, Resource>
  const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnResource)

  beforeAll(() => {
    // Bundles the four functions with the locally installed esbuild (no Docker).
    outdir = mkdtempSync(join(tmpdir(), 'token-service-cdk-'))
    const app = new App({ outdir })
    stack = new TokenServiceStack(app, 'TestTokenService', { clients })
    template = Template.fromStack(stack)
    resources = template.toJSON().Resources
  })

  afterAll(() => {
    if (outdir) rmSync(outdir, { recursive: true, force: true })
  })

  it('has one on-demand table with TTL on expires_at, PITR, gsi1 and deletion protection', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1)
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
        PointInTimeRecoverySpecification: Match.objectLike({ PointInTimeRecoveryEnabled: true }),
        DeletionProtectionEnabled: true,
        GlobalSecondaryIndexes: [
          Match.objectLike({
            IndexName: 'gsi1',
            KeySchema: [
              { AttributeName: 'gsi1pk', KeyType: 'HASH' },
              { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
            ],
          }),
        ],
      }),
    })
  })

  it('signs with a KMS RSA_2048 SIGN_VERIFY key that has an alias', () => {
    template.resourceCountIs('AWS::KMS::Key', 1)
    template.hasResourceProperties('AWS::KMS::Key', {
      KeySpec: 'RSA_2048',
      KeyUsage: 'SIGN_VERIFY',
    })
    template.resourceCountIs('AWS::KMS::Alias', 1)
  })

  it('runs four arm64 Node.js 22/24 functions with the documented settings', () => {
    const functions = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function')
    expect(functions).toHaveLength(4)
    for (const fn of functions) {
      expect(fn.Properties.Architectures).toEqual(['arm64'])
      expect(['nodejs22.x', 'nodejs24.x']).toContain(fn.Properties.Runtime)
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables
      expect(env).toMatchObject({
        SIGNER: 'kms',
        SIGNING_ALG: 'RS256',
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_METRICS_NAMESPACE: 'TokenService',
      })
      expect(JSON.parse(env.CLIENTS as string)).toEqual(clients)
      for (const key of ['TABLE_NAME', 'ISSUER', 'SIGNING_KEY_ID', 'POWERTOOLS_SERVICE_NAME']) {
        expect(env[key]).toBeDefined()
      }
    }
    const login = resources[logicalId(stack.service.loginFunction)]
    expect(login?.Properties).toMatchObject({ MemorySize: 1769, Timeout: 10 })
    for (const fn of [
      stack.service.tokenFunction,
      stack.service.revokeFunction,
      stack.service.jwksFunction,
    ]) {
      const props = resources[logicalId(fn)]?.Properties
      expect(props?.Timeout).toBe(5)
      expect(props?.MemorySize).toBeGreaterThanOrEqual(512)
      expect(props?.MemorySize).toBeLessThanOrEqual(1024)
    }
  })

  /** Which function's role each IAM action is granted to, and on which resources. */
  function grantsOf(action: string): Map<string, unknown[]> {
    const functionByRole = new Map<string, string>()
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type !== 'AWS::Lambda::Function') continue
      const role = (r.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]
      functionByRole.set(role, id)
    }
    const grants = new Map<string, unknown[]>()
    for (const r of Object.values(resources)) {
      if (r.Type !== 'AWS::IAM::Policy') continue
      const statements = (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement
      for (const roleRef of r.Properties.Roles as { Ref: string }[]) {
        const fn = functionByRole.get(roleRef.Ref) ?? `role ${roleRef.Ref}`
        for (const s of statements) {
          const actions = [s.Action].flat()
          if (
            s.Effect !== 'Allow' ||
            !actions.some((a) => a === action || a === 'kms:*' || a === '*')
          ) {
            continue
          }
          grants.set(fn, [...(grants.get(fn) ?? []), ...[s.Resource].flat()])
        }
      }
    }
    return grants
  }

  it('lets only login and token kms:Sign, on the signing key only', () => {
    const keyArn = { 'Fn::GetAtt': [logicalId(stack.service.signingKey), 'Arn'] }
    const sign = grantsOf('kms:Sign')
    expect([...sign.keys()].sort()).toEqual(
      [logicalId(stack.service.loginFunction), logicalId(stack.service.tokenFunction)].sort(),
    )
    for (const resourcesGranted of sign.values()) expect(resourcesGranted).toEqual([keyArn])

    const getPublicKey = grantsOf('kms:GetPublicKey')
    expect([...getPublicKey.keys()].sort()).toEqual(
      [stack.service.loginFunction, stack.service.tokenFunction, stack.service.jwksFunction]
        .map(logicalId)
        .sort(),
    )
    for (const resourcesGranted of getPublicKey.values()) expect(resourcesGranted).toEqual([keyArn])
  })

  it('gives table access only to the functions that need it, without wildcards', () => {
    const writers = (action: string) => [...grantsOf(action).keys()].sort()
    const [login, token, revoke, jwks] = [
      stack.service.loginFunction,
      stack.service.tokenFunction,
      stack.service.revokeFunction,
      stack.service.jwksFunction,
    ].map(logicalId)
    expect(writers('dynamodb:PutItem')).toEqual([login, token].sort())
    expect(writers('dynamodb:UpdateItem')).toEqual([token, revoke].sort())
    expect(writers('dynamodb:DeleteItem')).toEqual([])
    expect(writers('dynamodb:Scan')).toEqual([])
    expect(writers('dynamodb:Query')).toEqual([login])
    expect([...grantsOf('dynamodb:GetItem').keys()]).not.toContain(jwks)
    const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'))
    expect(policies).not.toContain('/index/*')
    expect(policies).not.toMatch(/"(dynamodb|kms):\*"/)
  })

  it('routes the HTTP API with CORS for the clients’ origins, with credentials', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1)
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({
        AllowCredentials: true,
        AllowOrigins: ['http://localhost:3000'],
      }),
    })
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map(
      (r) => (r as Resource).Properties.RouteKey,
    )
    expect(routes.sort()).toEqual(
      [
        'POST /login',
        'POST /token',
        'POST /revoke',
        'GET /.well-known/jwks.json',
        'GET /.well-known/openid-configuration',
        'GET /.well-known/oauth-authorization-server',
      ].sort(),
    )
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    })
  })

  it('passes cdk-nag AwsSolutions with no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks().validateScope(stack)
    expect(report.violations.map((v) => v.ruleName)).toEqual([])
  })

  it('honours algorithm ES256 and removalPolicy DESTROY', () => {
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } })
    const es = new TokenServiceStack(app, 'Es256', {
      clients,
      algorithm: 'ES256',
      removalPolicy: RemovalPolicy.DESTROY,
      issuer: 'https://auth.example.com',
    })
    const t = Template.fromStack(es)
    t.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' })
    t.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false })
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ ISSUER: 'https://auth.example.com', SIGNING_ALG: 'ES256' }),
      },
    })
  })
})
