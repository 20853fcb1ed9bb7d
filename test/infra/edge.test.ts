import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App, type Stack } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import { describe, expect, it } from 'vitest'
import { addNagPacks } from '../../lib/app-context.js'
import { readAppSettings } from '../../lib/config.js'
import { TokenServiceStack, type TokenServiceStackProps } from '../../lib/token-service-stack.js'
import { type Resource, testApp, testClients } from './synth.js'

const read = (config: unknown) =>
  readAppSettings(testApp(), { path: 'token-service.config.ts', config })

/**
 * As `npx cdk synth` runs: cdk.json's feature flags (a pinned partition becomes a literal) and
 * CloudFormation's own validation of each resource's properties.
 */
const asTheCli = () => {
  const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as {
    context: Record<string, unknown>
  }
  return new App({
    outdir: mkdtempSync(join(tmpdir(), 'token-service-cdk-')),
    context: { 'aws:cdk:bundling-stacks': [], ...context },
  })
}

/** A stack with the edge, in `region`, and its templates. */
function edgeStack(region: string, props: Partial<TokenServiceStackProps> = {}, app = testApp()) {
  const stack = new TokenServiceStack(app, 'Edged', {
    clients: testClients,
    env: { account: '111111111111', region },
    edge: { waf: { ratePerIp: 500 } },
    ...props,
  })
  const template = Template.fromStack(stack)
  return {
    app,
    stack,
    template,
    resources: template.toJSON().Resources as Record<string, Resource>,
  }
}

const ofType = (resources: Record<string, Resource>, type: string) =>
  Object.values(resources).filter((resource) => resource.Type === type)

describe('the edge (CloudFront and AWS WAF), off by default', () => {
  it('is off by default: no distribution, web ACL or secret', () => {
    const app = testApp()
    const stack = new TokenServiceStack(app, 'Plain', { clients: testClients })
    const template = Template.fromStack(stack)
    for (const type of [
      'AWS::CloudFront::Distribution',
      'AWS::WAFv2::WebACL',
      'AWS::SecretsManager::Secret',
    ]) {
      template.resourceCountIs(type, 0)
    }
    expect(stack.service.edge).toBeUndefined()
  })

  it('in us-east-1, holds a CLOUDFRONT web ACL: IP reputation, a per-IP rate on /login, /token and /me/password answering 429 slow_down, known bad inputs, the common rule set with body XSS and no user agent counted', () => {
    const { template, resources } = edgeStack('us-east-1')
    const [acl] = ofType(resources, 'AWS::WAFv2::WebACL')
    expect(acl?.Properties).toMatchObject({ Scope: 'CLOUDFRONT', DefaultAction: { Allow: {} } })
    const rules = acl?.Properties.Rules as {
      Name: string
      Priority: number
      Statement: Record<string, Record<string, unknown>>
      Action?: unknown
    }[]
    expect(rules.map((rule) => rule.Name)).toEqual([
      'AWSManagedRulesAmazonIpReputationList',
      'RatePerIp',
      'AWSManagedRulesKnownBadInputsRuleSet',
      'AWSManagedRulesCommonRuleSet',
    ])
    const rate = rules[1]
    expect(rate?.Statement.RateBasedStatement).toMatchObject({
      Limit: 500,
      AggregateKeyType: 'IP',
      EvaluationWindowSec: 300,
    })
    const scopeDown = rate?.Statement.RateBasedStatement?.ScopeDownStatement as
      | {
          OrStatement: {
            Statements: {
              ByteMatchStatement: { SearchString: string; PositionalConstraint: string }
            }[]
          }
        }
      | undefined
    const paths = (scopeDown?.OrStatement.Statements ?? []).map(
      (statement) => statement.ByteMatchStatement,
    )
    expect(paths.map((match) => match.SearchString)).toEqual(['/login', '/token', '/me/password'])
    expect(new Set(paths.map((match) => match.PositionalConstraint))).toEqual(new Set(['EXACTLY']))
    expect(rate?.Action).toEqual({
      Block: {
        CustomResponse: {
          ResponseCode: 429,
          CustomResponseBodyKey: 'slowDown',
          ResponseHeaders: [{ Name: 'Retry-After', Value: '300' }],
        },
      },
    })
    expect(
      JSON.parse(
        String(
          (acl?.Properties.CustomResponseBodies as Record<string, { Content: string }> | undefined)
            ?.slowDown?.Content,
        ),
      ),
    ).toMatchObject({ error: 'slow_down' })
    const common = rules[3]?.Statement.ManagedRuleGroupStatement
    expect(common?.RuleActionOverrides).toEqual([
      { Name: 'CrossSiteScripting_BODY', ActionToUse: { Count: {} } },
      { Name: 'NoUserAgent_HEADER', ActionToUse: { Count: {} } },
    ])
    // WAF logs only what it blocked or counted, with every credential redacted.
    template.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
      RedactedFields: [
        { SingleHeader: { Name: 'authorization' } },
        { SingleHeader: { Name: 'cookie' } },
        { SingleHeader: { Name: 'dpop' } },
        { SingleHeader: { Name: 'x-origin-verify' } },
      ],
      LoggingFilter: Match.objectLike({ DefaultBehavior: 'DROP' }),
    })
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: Match.stringLikeRegexp('^aws-waf-logs-'),
    })
  })

  it('puts CloudFront before the API with that web ACL: nothing cached but JWKS and discovery (briefly), every viewer header but Host forwarded, HTTPS only, TLS 1.2 to the origin with the secret header', () => {
    const { stack, template, resources } = edgeStack('us-east-1')
    const [distribution] = ofType(resources, 'AWS::CloudFront::Distribution')
    const config = distribution?.Properties.DistributionConfig as Record<string, unknown> & {
      DefaultCacheBehavior: Record<string, unknown>
      CacheBehaviors: Record<string, unknown>[]
      Origins: {
        CustomOriginConfig: Record<string, unknown>
        OriginCustomHeaders: { HeaderName: string; HeaderValue: unknown }[]
      }[]
    }
    const aclId = stack.getLogicalId(
      stack.service.node.findChild('EdgeWebAcl').node.findChild('Acl') as never,
    )
    expect(config.WebACLId).toEqual({ 'Fn::GetAtt': [aclId, 'Arn'] })
    // Managed policies: CachingDisabled, AllViewerAndCloudFrontHeaders-2022-06.
    expect(config.DefaultCacheBehavior).toMatchObject({
      CachePolicyId: '4135ea2d-6df8-44a3-9df3-4b5a84be39ad',
      OriginRequestPolicyId: '33f36d7e-f396-46d9-90e0-52428a34d9dc',
      ViewerProtocolPolicy: 'https-only',
      AllowedMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE'],
    })
    expect(config.CacheBehaviors).toHaveLength(1)
    expect(config.CacheBehaviors[0]).toMatchObject({
      PathPattern: '/.well-known/*',
      AllowedMethods: ['GET', 'HEAD', 'OPTIONS'],
    })
    template.hasResourceProperties('AWS::CloudFront::CachePolicy', {
      CachePolicyConfig: Match.objectLike({
        MinTTL: 0,
        DefaultTTL: 60,
        MaxTTL: 300,
        ParametersInCacheKeyAndForwardedToOrigin: Match.objectLike({
          HeadersConfig: { HeaderBehavior: 'whitelist', Headers: ['Origin'] },
          CookiesConfig: { CookieBehavior: 'none' },
          QueryStringsConfig: { QueryStringBehavior: 'none' },
        }),
      }),
    })
    const [origin] = config.Origins
    expect(origin?.CustomOriginConfig).toMatchObject({
      OriginProtocolPolicy: 'https-only',
      OriginSSLProtocols: ['TLSv1.2'],
    })
    // The header's value is resolved by CloudFormation from the generated secret: never a literal.
    const [header] = origin?.OriginCustomHeaders ?? []
    expect(header?.HeaderName).toBe('X-Origin-Verify')
    expect(JSON.stringify(header?.HeaderValue)).toMatch(/resolve:secretsmanager:/)
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: { ExcludePunctuation: true, PasswordLength: 48 },
    })
  })

  it('makes the edge’s address the issuer, and gives every HTTP function the secret and that address, the authorizer the address only', () => {
    const { stack, resources } = edgeStack('us-east-1')
    const distributionId = stack.getLogicalId(
      stack.service.edge?.distribution.node.defaultChild as never,
    )
    const edgeUrl = {
      'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [distributionId, 'DomainName'] }]],
    }
    expect(stack.resolve(stack.service.issuer)).toEqual(edgeUrl)
    const variablesOf = (fn: { function: { node: { defaultChild?: unknown } } }) => {
      const properties = resources[stack.getLogicalId(fn.function.node.defaultChild as never)]
        ?.Properties as { Environment: { Variables: Record<string, unknown> } } | undefined
      return properties?.Environment.Variables ?? {}
    }
    for (const [name, fn] of Object.entries(stack.service.functions)) {
      const variables = variablesOf(fn)
      expect(variables.ISSUER, name).toEqual(edgeUrl)
      expect(variables.REQUEST_ORIGIN, name).toEqual(edgeUrl)
      expect(JSON.stringify(variables.EDGE_ORIGIN_SECRET), name).toMatch(/resolve:secretsmanager:/)
    }
    const authorizer = variablesOf(stack.service.tokenAuthorizer?.handler as never)
    expect(authorizer.REQUEST_ORIGIN).toEqual(edgeUrl)
    expect(authorizer.EDGE_ORIGIN_SECRET).toBeUndefined()
    // No secret value anywhere in the template: only references to it.
    expect(JSON.stringify(resources)).not.toMatch(/SecretString"\s*:\s*"/)
  })

  it('in another region, builds the web ACL in a us-east-1 companion stack and reads its ARN across regions, deployed first', () => {
    const { app, stack } = edgeStack('eu-west-1', {}, asTheCli())
    const companion = stack.edgeWafStack as Stack
    expect(companion.region).toBe('us-east-1')
    expect(companion.account).toBe('111111111111')
    expect(companion.stackName).toBe('Edged-EdgeWaf')
    expect(companion.terminationProtection).toBe(true)
    Template.fromStack(companion).resourceCountIs('AWS::WAFv2::WebACL', 1)
    Template.fromStack(stack).resourceCountIs('AWS::WAFv2::WebACL', 0)
    const assembly = app.synth()
    const main = assembly.getStackByName('Edged')
    // With cdk.json's flags CloudFormation reads the companion's output itself.
    const distribution = Object.values(main.template.Resources as Record<string, Resource>).find(
      (resource) => resource.Type === 'AWS::CloudFront::Distribution',
    )
    expect(
      (distribution?.Properties.DistributionConfig as { WebACLId: unknown } | undefined)?.WebACLId,
    ).toMatchObject({
      'Fn::GetStackOutput': { StackName: 'Edged-EdgeWaf', Region: 'us-east-1' },
    })
    expect(main.dependencies.map((dependency) => dependency.id)).toContain('Edged-EdgeWaf')
  })

  it('refuses the edge without a region, with a custom domain, or an out-of-bounds rate, naming the key', () => {
    expect(() => read({ clients: testClients, edge: { waf: {} } })).toThrow(/edge needs region/)
    expect(() =>
      read({ clients: testClients, region: 'eu-west-1', edge: { waf: { ratePerIp: 5 } } }),
    ).toThrow(/edge\.waf\.ratePerIp must be an integer from 100 to 2000000000, got 5/)
    expect(() => read({ clients: testClients, region: 'eu-west-1', edge: {} })).toThrow(
      /edge needs waf/,
    )
    expect(() =>
      edgeStack('us-east-1', {
        domain: {
          domainName: 'auth.example.com',
          certificateArn: 'arn:aws:acm:us-east-1:111111111111:certificate/abc',
        },
      }),
    ).toThrow(/edge and domain together are not offered yet/)
    expect(
      () =>
        new TokenServiceStack(testApp(), 'NoRegion', { clients: testClients, edge: { waf: {} } }),
    ).toThrow(/edge needs env\.region/)
    const settings = read({
      clients: testClients,
      region: 'eu-west-1',
      edge: { waf: { ratePerIp: 2000 } },
    })
    expect(settings.props.edge).toEqual({ waf: { ratePerIp: 2000 } })
  })

  for (const [name, region, props] of [
    ['in us-east-1, Lambda authorizer', 'us-east-1', {}],
    [
      'in eu-west-1, native JWT authorizer, every other option on',
      'eu-west-1',
      {
        authorizer: 'jwt',
        tableEncryption: 'customer-managed',
        reservedConcurrency: { login: 50, token: 200 },
        tableWarmThroughput: { writeUnitsPerSecond: 8000 },
        canary: { everyMinutes: 5 },
      },
    ],
  ] as const) {
    it(`passes cdk-nag (AwsSolutions and Serverless) and CloudFormation's validation with the edge on, as the CLI synthesizes: ${name}`, () => {
      const { app, stack } = edgeStack(region, props as Partial<TokenServiceStackProps>, asTheCli())
      addNagPacks(app)
      for (const scope of [stack, stack.edgeWafStack].filter((s) => s !== undefined)) {
        for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
          const report = pack.validateScope(scope)
          expect(
            report.violations.map(
              (v) => `${v.severity} ${v.ruleName} ${v.violatingResources[0]?.constructPath}`,
            ),
          ).toEqual([])
        }
      }
      expect(() => app.synth()).not.toThrow()
    })
  }
})
