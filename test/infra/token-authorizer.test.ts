import { Duration, Stack } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import { describe, expect, it } from 'vitest'
import { TokenAuthorizer, type TokenAuthorizerProps } from '../../lib/token-authorizer.js'
import { testApp, testClients } from './synth.js'

/** Another team's stack: its own HTTP API and function, our authorizer in front of a route. */
function ordersStack(
  props: Partial<TokenAuthorizerProps> = {},
  extend: (stack: Stack, auth: TokenAuthorizer) => void = () => {},
) {
  const stack = new Stack(testApp(), 'Orders', {
    env: { account: '111111111111', region: 'eu-west-1' },
  })
  const auth = new TokenAuthorizer(stack, 'Auth', {
    issuer: 'https://auth.example.com',
    clients: testClients,
    table: dynamodb.Table.fromTableName(stack, 'Tokens', 'TokenService-Table'),
    ...props,
  })
  const api = new apigwv2.HttpApi(stack, 'OrdersApi')
  const orders = new lambda.Function(stack, 'Orders', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('export const handler = async () => ({ statusCode: 200 })'),
  })
  api.addRoutes({
    path: '/orders',
    methods: [apigwv2.HttpMethod.GET],
    integration: new HttpLambdaIntegration('OrdersIntegration', orders),
    authorizer: auth.authorizer,
  })
  extend(stack, auth)
  return { stack, auth, api, template: Template.fromStack(stack) }
}

/** The authorizer function's environment variables. */
function authorizerVariables(template: Template): Record<string, unknown> {
  const functions = Object.values(
    template.findResources('AWS::Lambda::Function', {
      Properties: { Environment: Match.anyValue() },
    }),
  ) as { Properties: { Environment: { Variables: Record<string, unknown> } } }[]
  const authorizer = functions.find(
    (fn) => 'AUTHORIZER_AUDIENCES' in fn.Properties.Environment.Variables,
  )
  if (!authorizer) throw new Error('no authorizer function')
  return authorizer.Properties.Environment.Variables
}

describe('TokenAuthorizer on another stack’s HTTP API', () => {
  it('protects the route with a REQUEST authorizer: payload 2.0, simple responses, Authorization header', () => {
    const { template } = ordersStack()
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /orders',
      AuthorizationType: 'CUSTOM',
    })
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      AuthorizerPayloadFormatVersion: '2.0',
      EnableSimpleResponses: true,
      IdentitySource: ['$request.header.Authorization'],
      // The clock skew (30 s): see the cache test below.
      AuthorizerResultTtlInSeconds: 30,
    })
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'apigateway.amazonaws.com',
      SourceArn: Match.objectLike({
        'Fn::Join': Match.arrayWith([Match.arrayWith([Match.stringLikeRegexp('authorizers/')])]),
      }),
    })
  })

  it("verifies with the issuer's JWKS: no key, no table and no KMS or DynamoDB permission", () => {
    const { template } = ordersStack()
    const variables = authorizerVariables(template)
    expect(variables).toMatchObject({ ISSUER: 'https://auth.example.com' })
    for (const name of [
      'SIGNING_KEY_ID',
      'RETIRING_KEY_IDS',
      'TABLE_NAME',
      'CLIENTS',
      'JWKS_URI',
    ]) {
      expect(variables, name).not.toHaveProperty(name)
    }
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (policy) =>
        (policy as { Properties: { PolicyDocument: { Statement: { Action: unknown }[] } } })
          .Properties.PolicyDocument.Statement,
    )
    expect(JSON.stringify(statements)).not.toContain('kms:')
    expect(JSON.stringify(statements)).not.toContain('dynamodb:')
  })

  it('refuses an http issuer or jwksUri at synth, naming the prop', () => {
    expect(() => ordersStack({ issuer: 'http://auth.example.com' })).toThrow(
      'TokenAuthorizer: issuer must be an https URL, got "http://auth.example.com"',
    )
    expect(() => ordersStack({ jwksUri: 'http://keys.example.com/jwks.json' })).toThrow(
      'TokenAuthorizer: jwksUri must be an https URL, got "http://keys.example.com/jwks.json"',
    )
    expect(() => ordersStack({ issuer: 'not a url' })).toThrow(/TokenAuthorizer: issuer/)
  })

  it('fetches the keys from jwksUri when given', () => {
    const { template } = ordersStack({ jwksUri: 'https://keys.example.com/jwks.json' })
    expect(authorizerVariables(template)).toMatchObject({
      JWKS_URI: 'https://keys.example.com/jwks.json',
    })
  })

  it('in strict mode caches nothing and reads the session and user from the token table, those partitions only', () => {
    const { template } = ordersStack({ strict: true })
    expect(authorizerVariables(template)).toMatchObject({ TABLE_NAME: 'TokenService-Table' })
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerResultTtlInSeconds: 0,
    })
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'dynamodb:BatchGetItem',
            Condition: {
              'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SESSION#*', 'USER#*'] },
            },
            Effect: 'Allow',
            Resource: {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':dynamodb:eu-west-1:111111111111:table/TokenService-Table',
                ],
              ],
            },
          },
        ]),
      },
    })
  })

  it('verifies with the default settings of functions/settings.ts unless told otherwise, and accepts every client’s audience', () => {
    const { template } = ordersStack()
    const variables = authorizerVariables(template)
    expect(variables).toMatchObject({
      AUTHORIZER_SKEW_SECONDS: '30',
      AUTHORIZER_MAX_TOKEN_BYTES: '4096',
      AUTHORIZER_AUDIENCES: [...new Set(testClients.map((client) => client.audience))].join(','),
      // The longest client TTL (900 s) plus the default backdate (5 s).
      AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: '905',
    })
    // The session cache is strict mode's; JWKS_MAX_AGE_SECONDS is the jwks function's.
    expect(variables).not.toHaveProperty('AUTHORIZER_SESSION_CACHE_SECONDS')
    expect(variables).not.toHaveProperty('JWKS_MAX_AGE_SECONDS')
  })

  it('takes its skew, strict-mode session cache, token size limit and audiences as props', () => {
    const clients = [testClients[0], { ...testClients[1], audience: 'https://orders.example.com' }]
    const { template } = ordersStack({
      clients: clients as typeof testClients,
      strict: true,
      clockSkewSeconds: 10,
      sessionCacheSeconds: 1,
      maxTokenBytes: 2048,
      audiences: ['https://orders.example.com'],
    })
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          AUTHORIZER_SKEW_SECONDS: '10',
          AUTHORIZER_SESSION_CACHE_SECONDS: '1',
          AUTHORIZER_MAX_TOKEN_BYTES: '2048',
          AUTHORIZER_AUDIENCES: 'https://orders.example.com',
        }),
      },
    })
  })

  it("bounds a token's lifetime by the longest client TTL plus the token service's backdate", () => {
    const clients = [testClients[0], { ...testClients[1], access_token_ttl_seconds: 3600 }]
    const { template } = ordersStack({
      clients: clients as typeof testClients,
      tokenBackdateSeconds: 60,
    })
    expect(authorizerVariables(template)).toMatchObject({
      AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: '3660',
    })
    expect(() => ordersStack({ tokenBackdateSeconds: 61 })).toThrow(
      /tokenBackdateSeconds must be an integer from 0 to 60/,
    )
  })

  it('refuses settings the function would refuse at cold start, and a session cache without strict mode', () => {
    expect(() => ordersStack({ clockSkewSeconds: -1 })).toThrow(
      /TokenAuthorizer: clockSkewSeconds must be an integer from 0 to 300 \(AUTHORIZER_SKEW_SECONDS\), got -1/,
    )
    expect(() => ordersStack({ maxTokenBytes: 16_385 })).toThrow(/from 1024 to 16384/)
    expect(() => ordersStack({ sessionCacheSeconds: 5 })).toThrow(/strict mode only/)
    expect(() => ordersStack({ audiences: ['a,b'] })).toThrow(/comma or outer spaces/)
    expect(() => ordersStack({ strict: true, table: undefined })).toThrow(/give it the table/)
  })

  it('caches an answer no longer than the skew and tells the authorizer, so that a cached Allow never outlives exp plus the skew', () => {
    // API Gateway keeps an answer for a fixed TTL (an HTTP API authorizer cannot set one per
    // answer). The authorizer stops allowing a token TTL seconds before exp + skew: an Allow
    // cached at the last moment then ends by exp + skew, as the authorizer's own would.
    const ttl = (props: Partial<TokenAuthorizerProps>) => {
      const { template, auth } = ordersStack(props)
      const [authorizer] = Object.values(template.findResources('AWS::ApiGatewayV2::Authorizer'))
      const seconds = (authorizer as { Properties: { AuthorizerResultTtlInSeconds: number } })
        .Properties.AuthorizerResultTtlInSeconds
      expect(authorizerVariables(template).AUTHORIZER_CACHE_SECONDS).toBe(String(seconds))
      expect(auth.resultsCacheTtl.toSeconds()).toBe(seconds)
      return seconds
    }
    expect(ttl({})).toBe(30)
    expect(ttl({ clockSkewSeconds: 10 })).toBe(10)
    expect(ttl({ clockSkewSeconds: 0 })).toBe(0)
    expect(ttl({ resultsCacheTtl: Duration.seconds(20) })).toBe(20)
    expect(ttl({ strict: true })).toBe(0)
    expect(ttl({ clockSkewSeconds: 300 })).toBe(300)
    expect(() => ordersStack({ resultsCacheTtl: Duration.seconds(31) })).toThrow(
      /resultsCacheTtl 31 s exceeds the clock skew \(30 s\)/,
    )
  })

  it('serves a second HTTP API through authorizerFor()', () => {
    const { template } = ordersStack({ resultsCacheTtl: Duration.seconds(20) }, (stack, auth) => {
      const second = new apigwv2.HttpApi(stack, 'Second')
      const fn = lambda.Function.fromFunctionArn(
        stack,
        'Existing',
        'arn:aws:lambda:eu-west-1:111111111111:function:x',
      )
      second.addRoutes({
        path: '/x',
        methods: [apigwv2.HttpMethod.GET],
        integration: new HttpLambdaIntegration('X', fn),
        authorizer: auth.authorizerFor('SecondAuthorizer'),
      })
    })
    const authorizers = template.findResources('AWS::ApiGatewayV2::Authorizer')
    expect(
      Object.values(authorizers).map(
        (a) => (a as { Properties: { AuthorizerResultTtlInSeconds: number } }).Properties,
      ),
    ).toEqual([
      expect.objectContaining({ AuthorizerResultTtlInSeconds: 20 }),
      expect.objectContaining({ AuthorizerResultTtlInSeconds: 20 }),
    ])
  })

  it('brings no cdk-nag finding of its own', () => {
    const { auth } = ordersStack({ strict: true })
    for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
      expect(pack.validateScope(auth).violations.map((v) => v.ruleName)).toEqual([])
    }
  })
})
